"""Items finish together: concurrent `finish_failed`/`finish_imported` calls share one `finish_many` transaction.

Dead links fail fast and small images are through their pixels in a few milliseconds, so many journeys reach
their final status within the same moment; one transaction each costs a dozen round trips under the job's row
lock, and every item of a batch waits for that lock in turn. This adapter sits between the journeys and the
queue: the first finish starts a flush; finishes arriving while that flush's transaction is in flight wait for
the next one. No timer delays anything: a lone finish is flushed at once (after one loop turn), and batches
grow only when the database is the bottleneck. Each caller still gets its own outcome (None where its lease
was lost), and a failed transaction fails every caller of that batch, none silently (their leases run out and
the items are claimed again: nothing of that batch was committed, so nothing is recorded twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from pixport.domain.queue import ClaimedItem, Failure, Imported, Outcome, StoredImage

MAX_BATCH = 100


class QueueWithBatches(Protocol):
    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool: ...

    async def finish_many(self, finishes: Sequence[Failure | Imported]) -> list[Outcome | None]: ...


class BatchedFinishes:
    """The journey's Queue port over a store with `finish_many`."""

    def __init__(
        self, queue: QueueWithBatches, max_batch: int = MAX_BATCH, on_finishing: Callable[[], None] | None = None
    ) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._waiting: list[tuple[Failure | Imported, asyncio.Future[Outcome | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._finishing = 0
        self.on_finishing = on_finishing

    @property
    def finishing(self) -> int:
        """Callers waiting for their finish to commit: their work is done, they hold no bytes any more."""
        return self._finishing

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool:
        return await self._queue.requeue(item, owner, delay_seconds, reason, refund=refund)

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        return await self._finish(Imported(item, stored, owner))

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None:
        return await self._finish(Failure(item, reason, owner))

    async def _finish(self, finish: Failure | Imported) -> Outcome | None:
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((finish, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="finish-batches")
        self._finishing += 1
        if self.on_finishing is not None:
            self.on_finishing()  # the runner may claim more: this item now only waits for the database
        try:
            # If this caller is cancelled, its finish may still be recorded with the batch: the same as a
            # cancellation arriving just after a single finish's commit.
            return await asyncio.shield(future)
        finally:
            self._finishing -= 1

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # one loop turn: finishes of journeys running in this same turn join
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
            try:
                outcomes = await self._queue.finish_many([finish for finish, _ in batch])
            except Exception as error:  # every caller of this batch sees it (GatedQueue retries it alone)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

