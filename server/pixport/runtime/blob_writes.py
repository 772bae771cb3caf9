"""Journeys write their blobs together: concurrent `put_all` calls share one call of the inner store.

A small image's four blobs cost one hop to a thread, and two rounds of fsyncs handed to the sync threads
(files, then directories); on two cores those hand-offs and the GIL they contend for were a large part of
the worker's CPU. The blobs of the journeys that store at the same moment go to the inner store as one
`put_all`: one hop and two fsync rounds for all of them. Each caller returns only when the whole batch is
durable (the inner store's own guarantee, now for the union), and a failing batch fails every caller of it,
each of which retries its item as before. Nothing waits for a timer: a lone call goes out after one loop
turn, and batches grow only while a write is already in flight."""

from __future__ import annotations

from collections.abc import Sequence

from pixport.domain.blob_records import BlobStore, ForwardingBlobStore
from pixport.runtime.coalesce import Coalescer

_Put = tuple[Sequence[bytes], Sequence[str]]


class CoalescedBlobWrites(ForwardingBlobStore):
    """A BlobStore whose concurrent `put_all`s (with their keys) share one `put_all` of the inner store."""

    def __init__(self, inner: BlobStore) -> None:
        super().__init__(inner)
        self._puts: Coalescer[_Put, list[str]] = Coalescer(self._put_together, name="blob-writes")

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        if not blobs:
            return []
        if keys is None:  # callers that did not hash: the inner store does, alone
            return await self._inner.put_all(blobs)
        if len(keys) != len(blobs):
            raise ValueError(f"{len(keys)} keys for {len(blobs)} blobs")
        return await self._puts.submit((blobs, keys))

    async def _put_together(self, batch: list[_Put]) -> list[list[str]]:
        union: dict[str, bytes] = {}
        for blobs, keys in batch:
            for key, data in zip(keys, blobs, strict=True):
                union.setdefault(key, data)
        await self._inner.put_all(list(union.values()), list(union))
        return [list(keys) for _blobs, keys in batch]
