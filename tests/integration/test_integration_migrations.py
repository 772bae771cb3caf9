"""Schema migrations against a real PostgreSQL: all applied once, in order, and idempotent."""

from __future__ import annotations

import asyncio

import asyncpg
from integration_support import Database
from pixport.store.db import migrate, migrations, ping


async def test_the_first_run_applied_every_migration_in_order(database: Database) -> None:
    assert database.first_migration == [name for _, name, _ in migrations()]
    assert database.first_migration[0] == "0001_foundation.sql"


async def test_a_second_run_applies_nothing(database: Database, pool: asyncpg.Pool) -> None:
    assert await migrate(database.dsn) == []
    rows = await pool.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(row["version"], row["name"]) for row in rows] == [(v, n) for v, n, _ in migrations()]


async def test_concurrent_runs_apply_nothing_and_do_not_fail(database: Database) -> None:
    results = await asyncio.gather(*(migrate(database.dsn) for _ in range(4)))
    assert results == [[], [], [], []]


async def test_the_schema_is_there(pool: asyncpg.Pool) -> None:
    await ping(pool)
    rows = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    tables = {row["tablename"] for row in rows}
    assert {"organizations", "api_clients", "import_jobs", "import_items", "images", "job_events"} <= tables
    phash = await pool.fetchval(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'images' AND column_name = 'phash'"
    )
    assert phash == "bigint"
