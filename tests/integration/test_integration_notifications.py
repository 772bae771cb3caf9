"""EventHub against a real PostgreSQL: LISTEN on one connection, NOTIFY from any other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from integration_support import batch, create_job
from pixport.domain.ids import new_job_id
from pixport.store.notifications import CHANNEL, EventHub


@pytest_asyncio.fixture
async def hub(dsn: str) -> AsyncIterator[EventHub]:
    started = EventHub(dsn)
    await started.start()
    yield started
    await started.close()


async def notify(pool: asyncpg.Pool, payload: str) -> None:
    await pool.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)


async def test_a_notification_from_another_connection_wakes_the_jobs_watcher(
    hub: EventHub, pool: asyncpg.Pool
) -> None:
    with hub.subscribe("job-a") as wake_a, hub.subscribe("job-b") as wake_b:
        assert hub.watcher_count == 2
        await notify(pool, "job-a:5")
        await asyncio.wait_for(wake_a.wait(), 5)
        assert not wake_b.is_set()
        await notify(pool, "job-b:1")
        await asyncio.wait_for(wake_b.wait(), 5)
    assert hub.watcher_count == 0


async def test_every_watcher_of_a_job_is_woken(hub: EventHub, pool: asyncpg.Pool) -> None:
    with hub.subscribe("job-c") as first, hub.subscribe("job-c") as second:
        assert hub.watcher_count == 2
        await notify(pool, "job-c:2")
        await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 5)
    assert hub.watcher_count == 0


async def test_watchers_leave_even_when_the_block_raises(hub: EventHub) -> None:
    with pytest.raises(RuntimeError), hub.subscribe("job-d"):
        assert hub.watcher_count == 1
        raise RuntimeError("watcher went away")
    assert hub.watcher_count == 0


async def test_a_cleared_watcher_stays_asleep_without_news(hub: EventHub, pool: asyncpg.Pool) -> None:
    with hub.subscribe("job-e") as wake:
        await notify(pool, "job-e:1")
        await asyncio.wait_for(wake.wait(), 5)
        wake.clear()
        await notify(pool, "job-other:1")
        await notify(pool, "job-e-suffix:1")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(wake.wait(), 0.3)


async def test_creating_a_job_wakes_its_watcher(hub: EventHub, pool: asyncpg.Pool, org: str) -> None:
    job_id = new_job_id()
    with hub.subscribe(job_id) as wake:
        await create_job(pool, job_id, org, batch("a"))
        await asyncio.wait_for(wake.wait(), 5)
    assert hub.watcher_count == 0


LISTENING = "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND pid <> pg_backend_pid()"


async def test_a_lost_listen_connection_wakes_everyone_and_is_reestablished(
    hub: EventHub, pool: asyncpg.Pool
) -> None:
    with hub.subscribe("job-f") as wake:
        killed = {row["pid"] for row in await pool.fetch(LISTENING)}
        assert killed  # the hub's connection (and perhaps a closing one of an earlier hub)
        await pool.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(killed))
        await asyncio.wait_for(wake.wait(), 5)  # woken so the watcher re-reads the log
        # It reconnects and LISTENs again on a new connection; then notifications arrive again.
        for _ in range(100):
            if {row["pid"] for row in await pool.fetch(LISTENING)} - killed:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the hub did not reconnect")
        await asyncio.sleep(0.1)  # let the reconnection's own wake-up pass
        wake.clear()
        await notify(pool, "job-f:9")
        await asyncio.wait_for(wake.wait(), 5)
    assert hub.watcher_count == 0
