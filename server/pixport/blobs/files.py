"""Blobs as files under `root/ab/cd/<sha256>`: atomic (temp file + rename), durable (fsync), with
the blocking file I/O off the event loop; large blobs are written around the page cache (O_DIRECT)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import mmap
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from pixport.blobs.base import BlobNotFound, BlobStoreUnavailable, blob_key, valid_key
from pixport.observability.metrics import BLOB_BYTES_WRITTEN

# Interrupted writes leave files with this prefix; a finished blob never has it.
TEMPORARY_PREFIX = ".tmp-"


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(root)

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    async def put(self, data: bytes) -> str:
        return (await self.put_all([data]))[0]

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        return await asyncio.to_thread(self._put_all, list(blobs), None if keys is None else list(keys))

    def _put_all(self, blobs: list[bytes], known_keys: list[str] | None) -> list[str]:
        keys = known_keys if known_keys is not None else [blob_key(data) for data in blobs]
        new: dict[str, bytes] = {}
        for key, data in zip(keys, blobs, strict=True):
            if key not in new and not os.path.exists(self._file(key)):  # existing: nothing to refresh
                new[key] = data
        if not new:
            return keys
        # Durability as before (every file's bytes are on disk before its rename, every rename and new
        # directory entry is on disk before this returns), but with two waits per call instead of one
        # per file and per directory: the files are written first, then all fsync'ed at once, then
        # renamed, then all touched directories fsync'ed at once. Concurrent fsyncs on one file system
        # share the journal's commits, where one after the other each waited for its own (up to ~15
        # sequential syncs per small image with the ab/cd fan-out: 22 % of the worker's samples).
        # Plain descriptors and string paths rather than pathlib and buffered files: this runs for
        # every blob, and their per-call overhead was a third of its CPU for a small image's four blobs.
        touched: set[str] = set()
        written: list[tuple[str, str]] = []
        descriptors: list[int] = []
        try:
            try:
                for key in new:
                    final = self._file(key)
                    directory = os.path.dirname(final)
                    temporary = f"{directory}/{TEMPORARY_PREFIX}{key}-{secrets.token_hex(8)}"
                    descriptors.append(self._create(temporary, directory, touched))
                    written.append((temporary, final))
                _write_and_sync_together(list(zip(descriptors, new.values(), strict=True)))
            finally:
                for descriptor in descriptors:
                    os.close(descriptor)
            for temporary, final in written:
                os.replace(temporary, final)
                touched.add(os.path.dirname(final))
        except BaseException:
            for temporary, _final in written:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
            raise
        directories = [os.open(directory, os.O_RDONLY | os.O_DIRECTORY) for directory in touched]
        try:
            _sync_together(directories)
        finally:
            for descriptor in directories:
                os.close(descriptor)
        BLOB_BYTES_WRITTEN.inc(sum(len(data) for data in new.values()))
        return keys

    def _file(self, key: str) -> str:
        valid_key(key)
        return f"{self._root}/{key[:2]}/{key[2:4]}/{key}"

    def _create(self, temporary: str, directory: str, touched: set[str]) -> int:
        """Open a new temporary file, creating its directories the first time one is needed (the
        directories whose entries changed are added to `touched`)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(temporary, flags, 0o644)
        except FileNotFoundError:
            touched.update(self._make_dirs(directory))
            return os.open(temporary, flags, 0o644)

    def _make_dirs(self, directory: str) -> set[str]:
        """Create `directory` and missing parents below the root; the parents whose entries changed."""
        changed: set[str] = set()
        missing: list[str] = []
        current = directory
        while current != self._root and not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):  # a concurrent put made it first
                os.mkdir(path)
            changed.add(os.path.dirname(path))
        return changed

    async def exists(self, key: str) -> bool:
        try:
            path = self._path(key)
        except KeyError:
            return False
        return await asyncio.to_thread(path.exists)

    async def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        return await asyncio.to_thread(self._sweep_temporary, older_than_seconds)

    def _sweep_temporary(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.root.glob(f"*/*/{TEMPORARY_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # removed by a concurrent sweep
                continue
        return removed

    async def check(self) -> None:
        await asyncio.to_thread(self._check)

    def _check(self) -> None:
        if not self.root.is_dir():
            raise BlobStoreUnavailable(f"blob directory {self.root} does not exist")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BlobStoreUnavailable(f"blob directory {self.root} is not writable by this process")

    async def close(self) -> None:
        return None


# Writes and fsyncs block in the kernel without the GIL: a few threads issue them concurrently. A batch of
# puts has a hundred descriptors or more (files and directories); each thread gets a share of them as one
# task, since one task per descriptor made the submits alone (futures, locks, wake-ups, all under the GIL)
# a tenth of the worker's Python time.
_SYNC_THREADS = 8
_syncer = ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="blob-sync")

# A blob this large is written with O_DIRECT: from an aligned buffer straight to the device, instead of
# being copied into freshly allocated page-cache pages and written back from there at fsync. Measured on
# the 2-core machine (docs/performance.md, "Blob files around the page cache"): a 4 MB file written and
# fsync'ed cost 12-15 ms of CPU buffered against ~1 ms direct, a 600 kB one 2.8 against 0.8 ms; below
# ~100 kB the two cost the same, and the buffered path needs no alignment, so small blobs stay buffered.
DIRECT_MIN_BYTES = 128 * 1024
_ALIGNMENT = 4096  # of the buffer's address, the file offset and the length (covers every common device)
_DIRECT_CHUNK = 1 << 20  # the aligned buffer each writing thread keeps: the most a direct write copies at once
_buffers = threading.local()
_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux and the BSDs; elsewhere every blob is written buffered


def _write_all(descriptor: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def _write_direct(descriptor: int, data: bytes) -> bool:
    """Write `data` to a new, empty file: its block-aligned part with O_DIRECT through this thread's aligned
    buffer, its last partial block buffered. False (nothing written) where the file system refuses O_DIRECT."""
    if not _O_DIRECT:
        return False
    flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETFL, flags | _O_DIRECT)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return False
        raise
    buffer: mmap.mmap | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = mmap.mmap(-1, _DIRECT_CHUNK)  # page-aligned, reused by this thread
    view = memoryview(data)
    aligned = len(data) - len(data) % _ALIGNMENT
    offset = 0
    try:
        while offset < aligned:
            size = min(_DIRECT_CHUNK, aligned - offset)
            buffer[:size] = view[offset:offset + size]
            _write_all(descriptor, memoryview(buffer)[:size])
            offset += size
    except OSError as error:
        if error.errno != errno.EINVAL or offset:
            raise
        fcntl.fcntl(descriptor, fcntl.F_SETFL, flags)  # the device wants another alignment: buffered it is
        return False
    fcntl.fcntl(descriptor, fcntl.F_SETFL, flags)
    _write_all(descriptor, view[aligned:])  # starts on a fresh block at the end of the file: nothing to read
    return True


def _write_and_sync(files: list[tuple[int, bytes]]) -> None:
    for descriptor, data in files:
        if len(data) < DIRECT_MIN_BYTES or not _write_direct(descriptor, data):
            _write_all(descriptor, data)
        os.fsync(descriptor)


def _write_and_sync_together(files: list[tuple[int, bytes]]) -> None:
    """Write each new (empty) file and fsync it, concurrently; returns once all are on disk (raises the
    first error)."""
    if len(files) == 1:
        _write_and_sync(files)
    elif files:
        shares = [files[start::_SYNC_THREADS] for start in range(min(_SYNC_THREADS, len(files)))]
        for _ in _syncer.map(_write_and_sync, shares):
            pass


def _sync_together(descriptors: list[int]) -> None:
    """fsync every descriptor, concurrently; returns once all are on disk (raises the first error)."""
    if len(descriptors) == 1:
        os.fsync(descriptors[0])
    elif descriptors:
        shares = [descriptors[start::_SYNC_THREADS] for start in range(min(_SYNC_THREADS, len(descriptors)))]
        for _ in _syncer.map(_sync_each, shares):
            pass


def _sync_each(descriptors: list[int]) -> None:
    for descriptor in descriptors:
        os.fsync(descriptor)
