"""Blobs written so that collection can never lose one: keys are recorded before their bytes are.

The journey writes through `RecordingBlobStore`, which has the blob store's interface: it records
every key in the ledger (committed), then writes the bytes. Collection (`collect_blobs`) deletes the
bytes of a key only while holding the ledger row's lock, and only when the row is older than the
grace period and no image references the key. A write of the same content at that moment either
waits for the lock and rewrites the bytes after, or has made the row young, so it is skipped."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)
# Up to this many bytes a put's blobs are hashed on the event loop (~180 us), above it in a thread.
HASH_ON_LOOP_BYTES = 256 * 1024


class BlobStore(Protocol):
    """The blob store as the ledger needs it (the contract of pixport.blobs.BlobStore)."""

    async def put(self, data: bytes) -> str: ...

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]: ...

    async def exists(self, key: str) -> bool: ...

    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def sweep_temporary(self, older_than_seconds: float) -> int: ...

    async def check(self) -> None: ...


class BlobLedger(Protocol):
    async def record(self, keys: Sequence[str]) -> None:
        """Upsert the keys with last_written_at = now(), committed when this returns."""
        ...

    async def collect(
        self, grace_seconds: float, limit: int, delete: Callable[[list[str]], Awaitable[None]]
    ) -> list[str]:
        """Lock up to `limit` old unreferenced keys, call `delete` with them while locked, then
        forget them; returns the keys collected."""
        ...


def blob_key(data: bytes) -> str:
    """Content address: the same as the blob store's (sha256 hex)."""
    return hashlib.sha256(data).hexdigest()


def _keys_of(blobs: Sequence[bytes]) -> list[str]:
    return [blob_key(data) for data in blobs]


class ForwardingBlobStore:
    """A blob store in front of another: everything but the writes goes straight to `inner`. Subclasses
    say what they add to `put_all`."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner

    async def put(self, data: bytes) -> str:
        return (await self.put_all([data]))[0]

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        return await self._inner.put_all(blobs, keys)

    async def exists(self, key: str) -> bool:
        return await self._inner.exists(key)

    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        return self._inner.read_chunks(key, chunk_size)

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        return await self._inner.sweep_temporary(older_than_seconds)

    async def check(self) -> None:
        await self._inner.check()


class RecordingBlobStore(ForwardingBlobStore):
    """A BlobStore that records keys in the ledger before writing (GC race rule)."""

    def __init__(self, inner: BlobStore, ledger: BlobLedger) -> None:
        super().__init__(inner)
        self._ledger = ledger

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        if not blobs:
            return []
        if keys is None:
            # Hashed once here and handed down so the store does not hash again. Not the pixel process's
            # sha256: a hostile image that took over its process could name another tenant's key. Large
            # blobs off the event loop (hashlib releases the GIL: a 4 MB original is 3 ms of CPU); small
            # ones on it, where the hash (~30 us for a small image's four) costs less than the hop to a
            # thread and back (~200 us of CPU).
            if sum(len(data) for data in blobs) <= HASH_ON_LOOP_BYTES:
                keys = _keys_of(blobs)
            else:
                keys = await asyncio.to_thread(_keys_of, blobs)
        await self._ledger.record(sorted(set(keys)))
        return await self._inner.put_all(blobs, keys)


async def collect_blobs(ledger: BlobLedger, blobs: BlobStore, grace_seconds: float, limit: int) -> int:
    """One round of collection; returns how many blobs were deleted."""

    async def delete(keys: list[str]) -> None:
        for key in keys:
            await blobs.delete(key)

    collected = await ledger.collect(grace_seconds, limit, delete)
    if collected:
        log.info("collected %d unreferenced blobs", len(collected))
    return len(collected)
