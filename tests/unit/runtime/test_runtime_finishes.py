"""Concurrent finishes share one batched transaction; each caller gets its own outcome or the batch's error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from pixport.domain.queue import ClaimedItem, Failure, Imported, Outcome, StoredImage
from pixport.domain.records import ItemStatus
from pixport.runtime.finishes import BatchedFinishes


def item(number: int) -> ClaimedItem:
    return ClaimedItem(
        id=number, job_id="job1", organization_id="org1", position=number, external_id=f"e{number}", url="u",
        title="t", metadata={}, media_type="image", attempts=1, system_name="s", lease_owner=f"claim{number}",
    )


@dataclass
class FakeQueue:
    lost: set[int] = field(default_factory=set)
    broken: bool = False
    batches: list[list[tuple[int, str, str]]] = field(default_factory=list)

    async def requeue(self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *,
                      refund: bool = False) -> bool:
        return True

    async def finish_many(self, finishes: Sequence[Failure | Imported]) -> list[Outcome | None]:
        self.batches.append([
            (f.item.id, f.owner, f.reason if isinstance(f, Failure) else f"stored {f.stored.sha256}") for f in finishes
        ])
        await asyncio.sleep(0.01)  # a transaction in flight: later finishes gather meanwhile
        if self.broken:
            raise OSError("database away")
        return [None if f.item.id in self.lost else
                Outcome(ItemStatus.FAILED, f.reason, None) if isinstance(f, Failure) else
                Outcome(ItemStatus.SUCCESS, None, None) for f in finishes]


async def test_concurrent_failures_share_one_transaction_and_keep_their_own_outcomes() -> None:
    queue = FakeQueue(lost={3})
    batched = BatchedFinishes(queue)
    outcomes = await asyncio.gather(*(batched.finish_failed(item(n), f"claim{n}", f"reason {n}") for n in range(5)))
    assert queue.batches == [[(n, f"claim{n}", f"reason {n}") for n in range(5)]]
    assert [o.reason if o else None for o in outcomes] == ["reason 0", "reason 1", "reason 2", None, "reason 4"]


async def test_failures_arriving_during_a_flush_go_in_the_next_batch() -> None:
    queue = FakeQueue()
    batched = BatchedFinishes(queue)
    first = asyncio.create_task(batched.finish_failed(item(1), "claim1", "r"))
    await asyncio.sleep(0.005)  # the first batch is in flight now
    later = [asyncio.create_task(batched.finish_failed(item(n), f"claim{n}", "r")) for n in (2, 3)]
    await asyncio.gather(first, *later)
    assert [[entry[0] for entry in batch] for batch in queue.batches] == [[1], [2, 3]]


async def test_batches_are_bounded() -> None:
    queue = FakeQueue()
    batched = BatchedFinishes(queue, max_batch=2)
    await asyncio.gather(*(batched.finish_failed(item(n), f"claim{n}", "r") for n in range(5)))
    assert [len(batch) for batch in queue.batches] == [2, 2, 1]


async def test_a_failed_transaction_fails_every_caller_of_its_batch() -> None:
    batched = BatchedFinishes(FakeQueue(broken=True))
    results = await asyncio.gather(*(batched.finish_failed(item(n), f"claim{n}", "r") for n in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(result, OSError) for result in results)
    with pytest.raises(OSError):
        await batched.finish_failed(item(9), "claim9", "r")


def stored(sha: str) -> StoredImage:
    return StoredImage(sha256=sha, format="png", mime_type="image/png", width=1, height=1, byte_size=1,
                       analysis={}, phash=None)


async def test_imports_and_failures_share_one_transaction_in_arrival_order() -> None:
    queue = FakeQueue(lost={2})
    batched = BatchedFinishes(queue)
    outcomes = await asyncio.gather(
        batched.finish_imported(item(0), "claim0", stored("a")), batched.finish_failed(item(1), "claim1", "404"),
        batched.finish_imported(item(2), "claim2", stored("b")),
        batched.finish_imported(item(3), "claim3", stored("c")),
    )
    assert queue.batches == [[(0, "claim0", "stored a"), (1, "claim1", "404"), (2, "claim2", "stored b"),
                              (3, "claim3", "stored c")]]
    assert [o.status if o else None for o in outcomes] == [ItemStatus.SUCCESS, ItemStatus.FAILED, None,
                                                          ItemStatus.SUCCESS]


async def test_callers_waiting_for_their_finish_are_counted_and_announced() -> None:
    announced: list[int] = []
    batched = BatchedFinishes(FakeQueue())
    batched.on_finishing = lambda: announced.append(batched.finishing)
    results = asyncio.gather(*(batched.finish_failed(item(n), f"claim{n}", "r") for n in range(3)))
    await asyncio.sleep(0.005)
    assert batched.finishing == 3 and announced == [1, 2, 3]
    await results
    assert batched.finishing == 0
