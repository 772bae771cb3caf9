"""The migration files themselves: every one is picked up, numbered once, in sequence."""

from __future__ import annotations

from pathlib import Path

import pixport.store
from pixport.store.db import migrations

MIGRATIONS = Path(pixport.store.__file__).parent / "migrations"


def test_every_sql_file_is_a_migration() -> None:
    # A misnamed file (e.g. 0005-add.sql) would be skipped silently by migrate().
    on_disk = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert [name for _, name, _ in migrations()] == on_disk


def test_versions_are_unique_and_contiguous_from_one() -> None:
    versions = [version for version, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_migrations_are_not_empty() -> None:
    assert all(sql.strip() for _, _, sql in migrations())
