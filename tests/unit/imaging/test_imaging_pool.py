from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from imaging_support import encode, textured
from pixport.imaging import ImageRejected, Limits, PixelPool, analyse
from pixport.imaging.pool import TEST_HOOK_ENV, PixelPoolClosed

GOOD = encode(textured(320, 240), "JPEG", quality=85)
LIMITS = Limits(timeout_seconds=20, memory_bytes=1024 * 1024 * 1024)


@pytest.fixture(scope="module")
def hooks_enabled() -> Iterator[None]:
    previous = os.environ.get(TEST_HOOK_ENV)
    os.environ[TEST_HOOK_ENV] = "1"
    yield
    if previous is None:
        del os.environ[TEST_HOOK_ENV]
    else:
        os.environ[TEST_HOOK_ENV] = previous


@pytest_asyncio.fixture(scope="module")
async def pool(hooks_enabled: None) -> AsyncIterator[PixelPool]:
    running = PixelPool(workers=2, limits=LIMITS)
    yield running
    await running.close()


def child_pids(pool: PixelPool) -> set[int]:
    return {slot.worker.process.pid for slot in pool._slots if slot.worker and slot.worker.process.pid}


async def reason_for(pool: PixelPool, data: bytes) -> str:
    with pytest.raises(ImageRejected) as caught:
        await pool.analyse(data)
    return caught.value.reason


async def test_results_match_analyse_in_process(pool: PixelPool) -> None:
    assert await pool.analyse(GOOD) == analyse(GOOD, LIMITS)


async def test_rejections_come_back_with_their_reason(pool: PixelPool) -> None:
    assert await reason_for(pool, b"plain text") == "not an image: the content is not PNG, JPEG, GIF, WebP or SVG"


async def test_children_are_scheduled_as_batch_work(pool: PixelPool) -> None:
    await pool.analyse(GOOD)
    assert {os.sched_getscheduler(pid) for pid in child_pids(pool)} == {os.SCHED_BATCH}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the worker itself stays interactive


async def test_children_run_under_the_address_space_limit(pool: PixelPool) -> None:
    # The hook allocates memory_bytes in one piece: fine on this machine, impossible under RLIMIT_AS.
    assert await reason_for(pool, b"PIXPORT-TEST-OOM") == "image processing ran out of memory"
    assert (await pool.analyse(GOOD)).format == "jpeg"


@pytest.mark.parametrize(
    ("hook", "reason"),
    [
        (b"PIXPORT-TEST-EXIT", "image processing crashed"),
        (b"PIXPORT-TEST-SEGV", "image processing crashed (SIGSEGV)"),
        (b"PIXPORT-TEST-KILL", "image processing ran out of memory (the process was killed)"),
    ],
)
async def test_a_dying_child_fails_only_its_own_image(pool: PixelPool, hook: bytes, reason: str) -> None:
    before = child_pids(pool)
    results = await asyncio.gather(
        pool.analyse(GOOD), pool.analyse(hook), pool.analyse(GOOD), pool.analyse(GOOD), return_exceptions=True
    )
    assert isinstance(results[1], ImageRejected) and results[1].reason == reason
    assert all(not isinstance(result, BaseException) for index, result in enumerate(results) if index != 1)
    assert all(result.format == "jpeg" for result in await asyncio.gather(pool.analyse(GOOD), pool.analyse(GOOD)))
    after = child_pids(pool)
    assert len(after) == 2 and after != before  # the dead child was replaced


async def test_a_reply_that_is_not_one_fails_the_image_and_retires_the_child(pool: PixelPool) -> None:
    before = child_pids(pool)
    assert await reason_for(pool, b"PIXPORT-TEST-GARBAGE") == "image processing failed unexpectedly"
    assert all(result.format == "jpeg" for result in await asyncio.gather(pool.analyse(GOOD), pool.analyse(GOOD)))
    assert len(child_pids(pool) - before) == 1


async def test_a_child_lost_while_idle_costs_no_image(pool: PixelPool) -> None:
    await asyncio.gather(pool.analyse(GOOD), pool.analyse(GOOD))
    for pid in child_pids(pool):
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    results = await asyncio.gather(pool.analyse(GOOD), pool.analyse(GOOD))
    assert all(result.format == "jpeg" for result in results)


async def test_cancelled_call_kills_its_child(pool: PixelPool) -> None:
    task = asyncio.create_task(pool.analyse(b"PIXPORT-TEST-SLEEP"))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await pool.analyse(GOOD)).format == "jpeg"


async def test_timeout_kills_the_child_and_spares_the_neighbour(hooks_enabled: None) -> None:
    # Long enough for the neighbour's image on a loaded 2-core machine, short enough to wait for.
    quick = PixelPool(workers=2, limits=Limits(timeout_seconds=4))
    try:
        await quick.analyse(GOOD)  # start the children: the timeout is for images, not for process start
        slow, good = await asyncio.gather(
            quick.analyse(b"PIXPORT-TEST-SLEEP"), quick.analyse(GOOD), return_exceptions=True
        )
        assert isinstance(slow, ImageRejected)
        assert slow.reason == "image processing timed out after 4 s"
        assert not isinstance(good, BaseException) and good.format == "jpeg"
        assert (await quick.analyse(GOOD)).format == "jpeg"
    finally:
        await quick.close()


async def test_hooks_are_inert_without_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_HOOK_ENV, raising=False)
    plain = PixelPool(workers=1, limits=LIMITS)
    try:
        assert (await reason_for(plain, b"PIXPORT-TEST-EXIT")).startswith("not an image")
    finally:
        await plain.close()


async def test_closed_pool_refuses_work_and_stops_its_children(hooks_enabled: None) -> None:
    closing = PixelPool(workers=2, limits=LIMITS)
    await asyncio.gather(closing.analyse(GOOD), closing.analyse(GOOD))
    processes = [slot.worker.process for slot in closing._slots if slot.worker]
    in_flight = asyncio.create_task(closing.analyse(b"PIXPORT-TEST-SLEEP"))
    await asyncio.sleep(0.5)
    await closing.close()
    with pytest.raises(PixelPoolClosed):
        await in_flight
    with pytest.raises(PixelPoolClosed):
        await closing.analyse(GOOD)
    for process in processes:
        process.join(5)
        assert not process.is_alive()


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PixelPool(workers=0, limits=LIMITS)
