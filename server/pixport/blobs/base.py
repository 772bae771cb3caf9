"""The blob store contract: content-addressed (a key is the SHA-256 hex of its bytes, so identical
content is stored once and a key's bytes never change), whole objects only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")


class BlobStoreUnavailable(Exception):
    """The store cannot be used right now; `reason` says why in words an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlobNotFound(FileNotFoundError):
    """No blob under this key."""


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str: ...
    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        """Store each blob whole under its content key; `keys`, when given, are their blob_key()s
        already computed by the caller (the worker hashes each blob once, not once per layer)."""
        ...
    async def exists(self, key: str) -> bool: ...
    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    async def sweep_temporary(self, older_than_seconds: float) -> int: ...
    async def check(self) -> None: ...


class ManagedBlobStore(BlobStore, Protocol):
    """A store as a process owns it: also closed at shutdown (connection pools)."""

    async def close(self) -> None: ...


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def valid_key(key: str) -> str:
    """`key` if it is a canonical SHA-256 hex digest, else KeyError (never a path or object name)."""
    if not KEY_PATTERN.fullmatch(key):
        raise KeyError(key)
    return key
