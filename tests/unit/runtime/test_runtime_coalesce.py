"""The coalescer: concurrent calls share one batched call, each caller gets its own result or error."""

from __future__ import annotations

import asyncio

import pytest
from pixport.runtime.coalesce import Coalescer


async def test_calls_of_the_same_moment_share_one_batch_and_keep_their_own_results() -> None:
    batches: list[list[int]] = []

    async def flush(values: list[int]) -> list[int]:
        batches.append(values)
        return [value * 10 for value in values]

    coalescer: Coalescer[int, int] = Coalescer(flush)
    results = await asyncio.gather(*(coalescer.submit(value) for value in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert batches == [[0, 1, 2, 3, 4]]


async def test_calls_arriving_during_a_flush_go_out_in_the_next_batch() -> None:
    batches: list[list[str]] = []
    release = asyncio.Event()

    async def flush(values: list[str]) -> list[str]:
        batches.append(values)
        if len(batches) == 1:
            await release.wait()
        return values

    coalescer: Coalescer[str, str] = Coalescer(flush)
    first = asyncio.create_task(coalescer.submit("a"))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(coalescer.submit(value)) for value in ("b", "c")]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == "a"
    assert [await task for task in later] == ["b", "c"]
    assert batches == [["a"], ["b", "c"]]


async def test_a_batch_never_exceeds_its_maximum() -> None:
    sizes: list[int] = []

    async def flush(values: list[int]) -> list[int]:
        sizes.append(len(values))
        return values

    coalescer: Coalescer[int, int] = Coalescer(flush, max_batch=3)
    assert await asyncio.gather(*(coalescer.submit(value) for value in range(7))) == list(range(7))
    assert sizes == [3, 3, 1]


async def test_a_failed_batch_fails_each_of_its_callers_and_not_the_next_batch() -> None:
    calls = 0

    async def flush(values: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return values

    coalescer: Coalescer[int, int] = Coalescer(flush)
    outcomes = await asyncio.gather(coalescer.submit(1), coalescer.submit(2), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [ConnectionError, ConnectionError]
    assert await coalescer.submit(3) == 3
    assert calls == 2


async def test_a_flush_returning_the_wrong_number_of_results_fails_its_callers() -> None:
    async def flush(values: list[int]) -> list[int]:
        return values[:-1]

    coalescer: Coalescer[int, int] = Coalescer(flush)
    with pytest.raises(ValueError):
        await asyncio.gather(coalescer.submit(1), coalescer.submit(2))
