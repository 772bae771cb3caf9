"""Journeys record their blob keys together: concurrent `record` calls share one upsert.

Every imported image records its keys (committed) before it writes their bytes; one statement per image was
13 % of the worker's GIL samples on small images. The keys of the journeys that record at the same moment go
out as one sorted upsert (sorted: concurrent upserts lock rows in one order, so they never deadlock), and
each caller returns only once that upsert is committed, so the rule "recorded before written" still holds
per key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from pixport.domain.blob_records import BlobLedger
from pixport.runtime.coalesce import Coalescer


class CoalescedLedger:
    """A BlobLedger whose concurrent records share one call of the inner ledger."""

    def __init__(self, inner: BlobLedger) -> None:
        self._inner = inner
        self._records: Coalescer[Sequence[str], None] = Coalescer(self._record_together, name="blob-records")

    async def record(self, keys: Sequence[str]) -> None:
        if keys:
            await self._records.submit(keys)

    async def _record_together(self, batch: list[Sequence[str]]) -> list[None]:
        await self._inner.record(sorted({key for keys in batch for key in keys}))
        return [None] * len(batch)

    async def collect(
        self, grace_seconds: float, limit: int, delete: Callable[[list[str]], Awaitable[None]]
    ) -> list[str]:
        return await self._inner.collect(grace_seconds, limit, delete)
