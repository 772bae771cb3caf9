"""`pixport migrate` waits for a concurrent run's advisory lock, but not forever."""

from __future__ import annotations

import time

import asyncpg
import pytest
from integration_support import Database
from pixport.store.db import _MIGRATION_LOCK, MigrationLockTimeout, migrate


async def test_a_held_lock_times_out_with_a_reason(database: Database) -> None:
    holder = await asyncpg.connect(database.dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout, match="another migration held the lock for over 1 s"):
            await migrate(database.dsn, lock_timeout_seconds=1.0)
        assert 0.9 <= time.monotonic() - started < 10
    finally:
        await holder.close()
    assert await migrate(database.dsn, lock_timeout_seconds=5.0) == []  # released: works again
