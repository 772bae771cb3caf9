"""The asyncpg pool and schema migrations."""

from __future__ import annotations

import json
import re
from importlib import resources

import asyncpg
import asyncpg.pool

# A connection as the store's helpers receive it: direct, or borrowed from the pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Serialises migrations when several processes start at once against one database.
_MIGRATION_LOCK = 0x706978706F7274  # "pixport"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every numbered migration, in order."""
    found = []
    for entry in resources.files("pixport.store").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class MigrationLockTimeout(RuntimeError):
    """Another `pixport migrate` held the migration lock for longer than we wait."""


async def migrate(dsn: str, lock_timeout_seconds: float = 300.0) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied.
    Concurrent runs queue on an advisory lock (the later ones then find nothing to do)."""
    connection = await asyncpg.connect(dsn)
    applied: list[str] = []
    locked = False
    try:
        await connection.execute(f"SET lock_timeout = {int(lock_timeout_seconds * 1000)}")
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        except asyncpg.LockNotAvailableError:
            raise MigrationLockTimeout(
                f"another migration held the lock for over {lock_timeout_seconds:.0f} s; is one stuck?"
            ) from None
        locked = True
        await connection.execute("SET lock_timeout = 0")
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied.append(name)
    finally:
        if locked:
            await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await connection.close()
    return applied


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database `name` if missing (connecting to the cluster's maintenance database)."""
    if not name.isidentifier():
        raise ValueError(f"unsafe database name {name!r}")
    connection = await asyncpg.connect(admin_dsn)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def ping(pool: asyncpg.Pool, deadline_seconds: float = 2.0) -> None:
    await pool.fetchval("SELECT 1", timeout=deadline_seconds)
