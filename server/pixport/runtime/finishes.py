"""Items finish together: concurrent `finish_failed`/`finish_imported` calls share one `finish_many` transaction.

One transaction per item costs a dozen round trips under the job's row lock, and every item of a batch
waits for that lock in turn; a Coalescer (runtime/coalesce.py) puts the finishes that arrive together into
one. Each caller still gets its own outcome (None where its lease was lost), and a failed transaction fails
every caller of that batch, none silently (their leases run out and the items are claimed again: nothing of
that batch was committed, so nothing is recorded twice)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from pixport.domain.queue import ClaimedItem, Failure, Imported, Outcome, StoredImage
from pixport.runtime.coalesce import MAX_BATCH, Coalescer


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
        self._batches: Coalescer[Failure | Imported, Outcome | None] = Coalescer(
            queue.finish_many, max_batch, name="finish-batches"
        )
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
        self._finishing += 1
        if self.on_finishing is not None:
            self.on_finishing()  # the runner may claim more: this item now only waits for the database
        try:
            return await self._batches.submit(finish)
        finally:
            self._finishing -= 1
