"""Concurrent blob-key records share one upsert; each caller returns only once its keys are committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from pixport.runtime.ledger import CoalescedLedger


class RecordingLedger:
    def __init__(self, fail_first: bool = False) -> None:
        self.records: list[list[str]] = []
        self.committed: set[str] = set()
        self._fail_first = fail_first

    async def record(self, keys: Sequence[str]) -> None:
        self.records.append(list(keys))
        await asyncio.sleep(0.005)
        if self._fail_first and len(self.records) == 1:
            raise ConnectionError("database went away")
        self.committed.update(keys)

    async def collect(
        self, grace_seconds: float, limit: int, delete: Callable[[list[str]], Awaitable[None]]
    ) -> list[str]:
        await delete(["k"])
        return ["k"]


async def test_records_of_the_same_moment_are_one_sorted_deduplicated_upsert() -> None:
    inner = RecordingLedger()
    ledger = CoalescedLedger(inner)
    seen_committed: list[bool] = []

    async def record(keys: list[str]) -> None:
        await ledger.record(keys)
        seen_committed.append(set(keys) <= inner.committed)

    await asyncio.gather(record(["c", "a"]), record(["b", "a"]), record(["d"]))
    assert inner.records == [["a", "b", "c", "d"]]
    assert seen_committed == [True, True, True]


async def test_an_empty_record_makes_no_call() -> None:
    inner = RecordingLedger()
    await CoalescedLedger(inner).record([])
    assert inner.records == []


async def test_a_failed_upsert_fails_each_of_its_callers() -> None:
    inner = RecordingLedger(fail_first=True)
    ledger = CoalescedLedger(inner)
    outcomes = await asyncio.gather(ledger.record(["a"]), ledger.record(["b"]), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [ConnectionError, ConnectionError]
    await ledger.record(["c"])
    assert inner.committed == {"c"}


async def test_collection_goes_to_the_inner_ledger() -> None:
    deleted: list[list[str]] = []

    async def delete(keys: list[str]) -> None:
        deleted.append(keys)

    assert await CoalescedLedger(RecordingLedger()).collect(60, 10, delete) == ["k"]
    assert deleted == [["k"]]
