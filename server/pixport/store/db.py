"""The asyncpg pool and schema migrations."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TypeVar

import asyncpg
import asyncpg.pool

T = TypeVar("T")

# A connection as the store's helpers receive it: direct, or borrowed from the pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

log = logging.getLogger(__name__)

# Bounds on every statement, so a stuck lock or an abandoned transaction cannot hang a request or
# a worker forever: server settings applied to each of the pool's connections.
ACQUIRE_TIMEOUT_SECONDS = 10.0
SERVER_SETTINGS = {
    "statement_timeout": "30s",
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "60s",
}

# Serialises migrations when several processes start at once against one database.
_MIGRATION_LOCK = 0x706978706F7274  # "pixport"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL` on every release: one more round trip per transaction (2.4 % of the worker's
    samples on dead links, and one more wait on the event loop each time). Nothing leaves session state
    on a pooled connection: no session-level SET (the only setting is `set_config(..., true)`, local to
    its transaction), no advisory locks (migrations take theirs on a connection of their own), no LISTEN
    (store/notifications.py listens on dedicated connections), no cursors outside a transaction. An open
    transaction is still rolled back and listeners dropped: asyncpg does that before calling this."""


class _TimedPool(asyncpg.Pool):
    """A pool whose acquire() gives up after ACQUIRE_TIMEOUT_SECONDS (asyncpg waits forever by
    default), so a request during an outage answers UNAVAILABLE instead of hanging."""

    def acquire(self, *, timeout: float | None = None) -> asyncpg.pool.PoolAcquireContext:
        return super().acquire(timeout=ACQUIRE_TIMEOUT_SECONDS if timeout is None else timeout)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # asyncpg.create_pool() is a thin `Pool(...)` call; constructing the subclass the same way.
    pool = _TimedPool(
        dsn, connection_class=asyncpg.Connection, record_class=asyncpg.Record, min_size=min_size,
        max_size=max_size, max_queries=50000, max_inactive_connection_lifetime=300.0, loop=None,
        connect=None, setup=None, init=_init_connection, reset=_keep_session, command_timeout=60,
        server_settings=SERVER_SETTINGS,
    )
    await pool
    return pool


# Errors that mean "the database is not reachable right now", as opposed to a bad query or data.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, a vanished unix socket
    TimeoutError,  # pool acquire, connect
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # connection closed underneath, pool closing
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.ConnectionFailureError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection reused after it broke mid-operation ("another operation is in progress").
    asyncpg.InternalClientError,
)


def is_connection_error(error: BaseException) -> bool:
    """True when `error` means the database is away (retry later), not that the work is wrong."""
    if isinstance(error, asyncpg.QueryCanceledError):  # statement_timeout / lock_timeout: a busy DB
        return True
    return isinstance(error, _CONNECTION_ERRORS)


class DatabaseGate:
    """Backoff for loops that poll the database (claim loops, dispatchers): after a connection
    error, `wait()` sleeps with exponential backoff and jitter and `healthy()` resets it, and the
    gate logs the outage once when it starts and once when it ends, not on every attempt."""

    def __init__(self, what: str, initial: float = 0.5, maximum: float = 10.0) -> None:
        self._what = what
        self._initial = initial
        self._maximum = maximum
        self._failures = 0
        self._down_since: float | None = None

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException) -> None:
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("%s: database unavailable (%s); waiting for it", self._what, error or type(error).__name__)

    def healthy(self) -> None:
        if self._down_since is not None:
            log.warning("%s: database back after %.1f s", self._what, time.monotonic() - self._down_since)
        self._failures = 0
        self._down_since = None

    def delay(self) -> float:
        base = min(self._maximum, self._initial * 2 ** max(0, self._failures - 1))
        return float(base * random.uniform(0.5, 1.0))

    async def wait(self) -> None:
        await asyncio.sleep(self.delay())

    async def retry(self, operation: Callable[[], Awaitable[T]], *, give_up_after: float | None = None) -> T:
        """Run `operation` until it gets past connection errors (other errors propagate), backing
        off meanwhile; after `give_up_after` seconds of outage the last connection error is raised.
        For a worker's final write (finish_imported, requeue): the work already done is kept and
        recorded once the database is back, instead of being counted as a failed attempt."""
        started = time.monotonic()
        while True:
            try:
                result = await operation()
            except Exception as error:
                if not is_connection_error(error):
                    raise
                self.failed(error)
                if give_up_after is not None and time.monotonic() - started >= give_up_after:
                    raise
                await self.wait()
                continue
            self.healthy()
            return result


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
    async with pool.acquire(timeout=deadline_seconds) as connection:
        await connection.fetchval("SELECT 1", timeout=deadline_seconds)
