"""Database faults against a real PostgreSQL: LISTEN connections that come back after their
backend is killed, and the pool's statement bounds."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from pixport.store.db import create_pool, is_connection_error
from pixport.store.notifications import listen


async def _kill_listeners(pool: asyncpg.Pool, channel: str) -> int:
    # pg_listening_channels() is per session, so find the backend by what it last ran.
    return int(await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE query ILIKE $1 AND pid <> pg_backend_pid()", f"%LISTEN%{channel}%"))


async def test_a_listen_connection_reconnects_after_its_backend_dies_and_wakes_everyone(
    dsn: str, pool: asyncpg.Pool
) -> None:
    channel = "pixport_test_faults"
    woken: list[str] = []
    wake = asyncio.Event()

    def on_notify(_connection: object, _pid: int, _channel: str, payload: object) -> None:
        woken.append(str(payload))
        wake.set()

    listener = await listen(dsn, {channel: on_notify})
    try:
        assert await _kill_listeners(pool, channel) == 1
        await asyncio.wait_for(wake.wait(), 10)  # the reconnect wakes the callback once
        assert woken == [""]
        wake.clear()
        await pool.execute("SELECT pg_notify($1, 'after')", channel)
        await asyncio.wait_for(wake.wait(), 10)
        assert woken == ["", "after"]
    finally:
        await listener.close()


async def test_pooled_connections_carry_statement_and_lock_timeouts(dsn: str) -> None:
    pool = await create_pool(dsn, max_size=1)
    try:
        settings = await pool.fetchrow(
            "SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock, "
            "current_setting('idle_in_transaction_session_timeout') AS idle")
        assert settings is not None
        assert (settings["statement"], settings["lock"], settings["idle"]) == ("30s", "10s", "1min")
        with pytest.raises(asyncpg.QueryCanceledError) as cancelled:
            await pool.execute("SET statement_timeout = '50ms'; SELECT pg_sleep(1)")
        assert is_connection_error(cancelled.value)
    finally:
        await pool.close()
