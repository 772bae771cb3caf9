"""FileBlobStore: content-addressed, deduplicated, atomically and durably written blobs, and the
PIXPORT_BLOB_URL selection."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
from pixport import blobs
from pixport.blobs import BlobNotFound, BlobStoreUnavailable, FileBlobStore
from pixport.blobs.files import DIRECT_MIN_BYTES, TEMPORARY_PREFIX
from pixport.observability.metrics import BLOB_BYTES_WRITTEN


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def read(store: FileBlobStore, key: str, chunk_size: int = 1 << 20) -> bytes:
    return b"".join([chunk async for chunk in store.read_chunks(key, chunk_size)])


async def test_the_key_is_the_sha256_and_the_path_fans_out(store: FileBlobStore) -> None:
    data = b"hello pixport"
    key = await store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert files(store.root) == [store.root / key[:2] / key[2:4] / key]
    assert (store.root / key[:2] / key[2:4] / key).read_bytes() == data


def test_the_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "blobs"
    FileBlobStore(root)
    assert root.is_dir()


async def test_identical_content_is_stored_once_and_not_rewritten(store: FileBlobStore) -> None:
    first = await store.put(b"same bytes")
    path = store.root / first[:2] / first[2:4] / first
    before = path.stat()
    written = BLOB_BYTES_WRITTEN._value.get()
    assert await store.put(b"same bytes") == first
    assert files(store.root) == [path]
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert BLOB_BYTES_WRITTEN._value.get() == written  # only new blobs count


async def test_new_bytes_are_counted(store: FileBlobStore) -> None:
    written = BLOB_BYTES_WRITTEN._value.get()
    await store.put_all([b"12345", b"123", b"12345"])
    assert BLOB_BYTES_WRITTEN._value.get() == written + 8


async def test_different_content_gets_different_keys(store: FileBlobStore) -> None:
    keys = {await store.put(b"a"), await store.put(b"b"), await store.put(b"")}
    assert len(keys) == 3
    assert len(files(store.root)) == 3


async def test_put_all_keeps_order_and_duplicates(store: FileBlobStore) -> None:
    data = [b"one", b"two", b"one", b""]
    keys = await store.put_all(data)
    assert keys == [hashlib.sha256(d).hexdigest() for d in data]
    assert len(files(store.root)) == 3
    for key, blob in zip(keys, data, strict=True):
        assert await read(store, key) == blob


async def test_put_all_syncs_files_and_each_touched_directory_once(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    data = [os.urandom(64) for _ in range(10)]
    await store.put_all(data)
    keys = [hashlib.sha256(d).hexdigest() for d in data]
    leaf_dirs = {store.root / k[:2] / k[2:4] for k in keys}
    middle_dirs = {store.root / k[:2] for k in keys}
    # 10 files + every leaf directory (renames) + every middle directory and the root (new entries).
    assert len(synced) == 10 + len(leaf_dirs) + len(middle_dirs) + 1


async def test_exists_and_read_back(store: FileBlobStore) -> None:
    key = await store.put(b"x" * 1234)
    assert await store.exists(key)
    assert await read(store, key, chunk_size=100) == b"x" * 1234
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not await store.exists(missing)
    with pytest.raises(BlobNotFound):
        await read(store, missing)
    with pytest.raises(FileNotFoundError):  # BlobNotFound is one
        await read(store, missing)


async def test_empty_blob(store: FileBlobStore) -> None:
    key = await store.put(b"")
    assert key == hashlib.sha256(b"").hexdigest()
    assert [chunk async for chunk in store.read_chunks(key)] == []


async def test_writes_leave_no_temporary_files(store: FileBlobStore) -> None:
    keys = await store.put_all([os.urandom(100) for _ in range(20)])
    assert sorted(p.name for p in files(store.root)) == sorted(keys)


async def test_concurrent_puts_of_the_same_content_give_one_complete_file(store: FileBlobStore) -> None:
    data = os.urandom(2 * 1024 * 1024)
    results = await asyncio.gather(*(store.put(data) for _ in range(8)))
    key = hashlib.sha256(data).hexdigest()
    assert results == [key] * 8
    assert [p.name for p in files(store.root)] == [key]
    assert await read(store, key) == data


async def test_read_chunks_in_the_asked_size(store: FileBlobStore) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    key = await store.put(data)
    chunks = [chunk async for chunk in store.read_chunks(key, chunk_size=4096)]
    assert [len(c) for c in chunks] == [4096, 4096, 2048]
    assert b"".join(chunks) == data


async def test_delete_is_idempotent(store: FileBlobStore) -> None:
    key = await store.put(b"to delete")
    await store.delete(key)
    assert not await store.exists(key)
    await store.delete(key)
    assert files(store.root) == []


async def test_sweep_removes_only_old_temporary_files(store: FileBlobStore) -> None:
    key = await store.put(b"kept")
    directory = store.root / key[:2] / key[2:4]
    old = directory / f"{TEMPORARY_PREFIX}{key}-old"
    fresh = directory / f"{TEMPORARY_PREFIX}{key}-fresh"
    old.write_bytes(b"interrupted")
    fresh.write_bytes(b"in progress")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert await store.sweep_temporary(older_than_seconds=600) == 1
    assert files(store.root) == sorted([directory / key, fresh])
    assert await store.sweep_temporary(older_than_seconds=600) == 0


async def test_check_names_the_directory_problem(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    await store.check()
    store.root.rmdir()
    with pytest.raises(BlobStoreUnavailable, match="does not exist"):
        await store.check()


BAD_KEYS = [
    "",
    "abc",
    "../../etc/passwd",
    "../" + "a" * 61,
    "A" * 64,  # upper case is not the canonical form
    "g" * 64,
    "a" * 63,
    "a" * 65,
    "a" * 32 + "/" + "a" * 31,
    "a" * 63 + "\x00",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_raise_key_error(store: FileBlobStore, key: str) -> None:
    with pytest.raises(KeyError):
        await read(store, key)
    with pytest.raises(KeyError):
        await store.delete(key)
    assert not await store.exists(key)


async def test_a_key_with_a_trailing_newline_is_a_bad_key(store: FileBlobStore) -> None:
    key = await store.put(b"stored")
    with pytest.raises(KeyError):
        await read(store, key + "\n")


def test_the_url_selects_the_store(tmp_path: Path) -> None:
    default = tmp_path / "default"
    unset = blobs.from_url("", default)
    assert isinstance(unset, FileBlobStore) and unset.root == default
    bare = blobs.from_url("file://", default)
    assert isinstance(bare, FileBlobStore) and bare.root == default
    explicit = blobs.from_url(f"file://{tmp_path}/elsewhere", default)
    assert isinstance(explicit, FileBlobStore) and explicit.root == tmp_path / "elsewhere"


@pytest.mark.parametrize("url", ["http://bucket/x", "s3://", "file://host/path", "s3://bucket/p?x=1", "bucket"])
def test_a_bad_url_says_what_is_expected(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match=r"PIXPORT_BLOB_URL must be file://PATH or s3://BUCKET/PREFIX"):
        blobs.from_url(url, tmp_path)


async def test_the_recording_store_hashes_each_blob_once_and_the_file_store_trusts_its_keys(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixport.domain.blob_records import RecordingBlobStore

    recorded: list[list[str]] = []

    class Ledger:
        async def record(self, keys: list[str]) -> None:
            recorded.append(list(keys))

        async def collect(self, grace_seconds: float, limit: int, delete: object) -> list[str]:
            return []

    def no_second_hash(data: bytes) -> str:
        raise AssertionError("the file store hashed a blob whose key it was given")

    monkeypatch.setattr("pixport.blobs.files.blob_key", no_second_hash)
    originals = [b"original bytes", b"rendition bytes", b"original bytes"]
    keys = await RecordingBlobStore(store, Ledger()).put_all(originals)
    assert keys == [hashlib.sha256(data).hexdigest() for data in originals]
    assert recorded == [sorted(set(keys))]
    assert [await read(store, key) for key in keys] == originals
    assert len(files(store.root)) == 2


@pytest.mark.parametrize(("sizes", "hops"), [((4000, 2800, 1500), 0), ((200 * 1024, 100 * 1024), 1)])
async def test_small_puts_are_hashed_on_the_loop_and_large_ones_in_a_thread(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch, sizes: tuple[int, ...], hops: int
) -> None:
    from pixport.domain import blob_records

    threads: list[object] = []
    real_to_thread = asyncio.to_thread

    async def counted(function: Any, *args: Any) -> Any:
        threads.append(function)
        return await real_to_thread(function, *args)

    class Ledger:
        async def record(self, keys: list[str]) -> None:
            return None

        async def collect(self, grace_seconds: float, limit: int, delete: object) -> list[str]:
            return []

    monkeypatch.setattr(blob_records.asyncio, "to_thread", counted)
    originals = [bytes([index]) * size for index, size in enumerate(sizes)]
    keys = await blob_records.RecordingBlobStore(store, Ledger()).put_all(originals)
    assert keys == [hashlib.sha256(data).hexdigest() for data in originals]
    # The hashing hop only: the file store's own write goes through the same asyncio.to_thread.
    assert len(threads) == hops + 1
    assert [await read(store, key) for key in keys] == originals


# Around the block size and the aligned buffer's size: below the direct threshold, exactly aligned, one
# byte over (a one-byte buffered tail), larger than one buffer with a partial last block.
DIRECT_SIZES = [DIRECT_MIN_BYTES - 1, DIRECT_MIN_BYTES, DIRECT_MIN_BYTES + 1, 3 * 1024 * 1024 + 4097]


@pytest.mark.parametrize("size", DIRECT_SIZES)
async def test_large_blobs_are_written_around_the_page_cache_and_read_back_whole(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    direct: list[int] = []
    real_fcntl = fcntl.fcntl

    def spy(descriptor: int, command: int, argument: int = 0) -> Any:
        if command == fcntl.F_SETFL and argument & os.O_DIRECT:
            direct.append(descriptor)
        return real_fcntl(descriptor, command, argument)

    monkeypatch.setattr(fcntl, "fcntl", spy)
    data = os.urandom(size)
    key = await store.put(data)
    assert await read(store, key) == data
    assert (store.root / key[:2] / key[2:4] / key).stat().st_size == size
    assert len(direct) == (1 if size >= DIRECT_MIN_BYTES else 0)


@pytest.mark.parametrize("refused_at", ["fcntl", "write"])
async def test_a_file_system_without_direct_writes_gets_buffered_ones(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch, refused_at: str
) -> None:
    """tmpfs before Linux 6.6 refuses O_DIRECT when it is set, some devices only at the first write."""
    real_fcntl, real_write = fcntl.fcntl, os.write
    direct: set[int] = set()
    attempts = 0

    def refusing_fcntl(descriptor: int, command: int, argument: int = 0) -> Any:
        nonlocal attempts
        if command == fcntl.F_SETFL and argument & os.O_DIRECT:
            attempts += 1
            if refused_at == "fcntl":
                raise OSError(errno.EINVAL, "Invalid argument")
            direct.add(descriptor)
        elif command == fcntl.F_SETFL:
            direct.discard(descriptor)
        return real_fcntl(descriptor, command, argument)

    def refusing_write(descriptor: int, data: Any) -> int:
        if descriptor in direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(descriptor, data)

    monkeypatch.setattr(fcntl, "fcntl", refusing_fcntl)
    monkeypatch.setattr(os, "write", refusing_write)
    data = [os.urandom(DIRECT_MIN_BYTES + 10), os.urandom(2 * DIRECT_MIN_BYTES)]
    keys = await store.put_all(data)
    assert [await read(store, key) for key in keys] == data
    assert attempts == 2  # each large blob tried the direct path first, and was written anyway


async def test_a_failing_direct_write_fails_the_put_and_leaves_no_blob(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    writes = 0

    def failing_second_write(descriptor: int, data: Any) -> int:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", failing_second_write)
    with pytest.raises(OSError, match="No space"):
        await store.put(os.urandom(3 * 1024 * 1024))
    assert files(store.root) == []
