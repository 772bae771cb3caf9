from __future__ import annotations

import asyncpg
import pytest
from pixport.store.db import DatabaseGate, is_connection_error


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "refused"), TimeoutError(), asyncpg.InterfaceError("closed"),
    asyncpg.ConnectionDoesNotExistError("gone"), asyncpg.CannotConnectNowError("starting up"),
    asyncpg.AdminShutdownError("shutdown"), asyncpg.QueryCanceledError("statement timeout"),
])
def test_outages_are_connection_errors(error: BaseException) -> None:
    assert is_connection_error(error)


@pytest.mark.parametrize("error", [
    asyncpg.UniqueViolationError("dup"), asyncpg.UndefinedTableError("no table"), ValueError("bad"), KeyError("k"),
])
def test_bugs_and_bad_data_are_not(error: BaseException) -> None:
    assert not is_connection_error(error)


def test_the_gate_backs_off_and_resets() -> None:
    gate = DatabaseGate("test", initial=1.0, maximum=8.0)
    assert not gate.is_down
    delays = []
    for _ in range(6):
        gate.failed(OSError("down"))
        delays.append(gate.delay())
    assert gate.is_down
    assert 0.5 <= delays[0] <= 1.0 and all(4.0 <= d <= 8.0 for d in delays[3:])
    gate.healthy()
    assert not gate.is_down and gate.delay() <= 1.0


async def test_retry_rides_out_connection_errors_and_lets_bugs_through() -> None:
    gate = DatabaseGate("test", initial=0.001, maximum=0.002)
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise asyncpg.CannotConnectNowError("starting up")
        return "done"

    assert await gate.retry(flaky) == "done" and len(calls) == 3 and not gate.is_down

    async def broken() -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        await gate.retry(broken)

    async def down() -> str:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(ConnectionRefusedError):
        await gate.retry(down, give_up_after=0.01)
