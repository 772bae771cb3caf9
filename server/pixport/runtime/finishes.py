"""Failed items finish together: concurrent `finish_failed` calls share one `finish_failed_many` transaction.

Dead links fail fast, so many journeys reach their final status within the same moment; one transaction
each costs a dozen round trips under the job's row lock. This adapter sits between the journeys and the
queue: the first failure starts a flush; failures arriving while that flush's transaction is in flight
wait for the next one. No timer delays anything: a lone failure is flushed at once (after one loop turn),
and batches grow only when the database is the bottleneck. Each caller still gets its own outcome (None
where its lease was lost), and a failed transaction fails every caller of that batch, none silently."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pixport.domain.queue import ClaimedItem, Failure, Outcome, StoredImage

MAX_BATCH = 100


class QueueWithBatches(Protocol):
    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool: ...

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None: ...

    async def finish_failed_many(self, failures: Sequence[Failure]) -> list[Outcome | None]: ...

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None: ...


class BatchedFailures:
    """The journey's Queue port over a store with `finish_failed_many`."""

    def __init__(self, queue: QueueWithBatches, max_batch: int = MAX_BATCH) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._waiting: list[tuple[Failure, asyncio.Future[Outcome | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool:
        return await self._queue.requeue(item, owner, delay_seconds, reason, refund=refund)

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        return await self._queue.finish_imported(item, owner, stored)

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None:
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((Failure(item, reason, owner), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="finish-failed-batches")
        # If this caller is cancelled, its failure may still be recorded with the batch: the same as a
        # cancellation arriving just after a single finish's commit.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # one loop turn: failures of journeys running in this same turn join
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
            try:
                outcomes = await self._queue.finish_failed_many([failure for failure, _ in batch])
            except Exception as error:  # every caller of this batch sees it (its lease runs out; reclaimed)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
