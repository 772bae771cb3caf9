"""FileBlobStore: content-addressed, deduplicated, atomically written blobs."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from pixport.blobs import FileBlobStore


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_the_key_is_the_sha256_and_the_path_fans_out(store: FileBlobStore) -> None:
    data = b"hello pixport"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert files(store.root) == [store.root / key[:2] / key[2:4] / key]
    assert (store.root / key[:2] / key[2:4] / key).read_bytes() == data


def test_the_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "blobs"
    FileBlobStore(root)
    assert root.is_dir()


def test_identical_content_is_stored_once(store: FileBlobStore) -> None:
    first = store.put(b"same bytes")
    path = store.root / first[:2] / first[2:4] / first
    inode = path.stat().st_ino
    assert store.put(b"same bytes") == first
    assert files(store.root) == [path]
    assert path.stat().st_ino == inode  # not rewritten


def test_different_content_gets_different_keys(store: FileBlobStore) -> None:
    keys = {store.put(b"a"), store.put(b"b"), store.put(b"")}
    assert len(keys) == 3
    assert len(files(store.root)) == 3


def test_exists_and_read_back(store: FileBlobStore) -> None:
    key = store.put(b"x" * 1234)
    assert store.exists(key)
    assert b"".join(store.read_chunks(key, chunk_size=100)) == b"x" * 1234
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(FileNotFoundError):
        list(store.read_chunks(missing))


def test_empty_blob(store: FileBlobStore) -> None:
    key = store.put(b"")
    assert key == hashlib.sha256(b"").hexdigest()
    assert list(store.read_chunks(key)) == []


def test_writes_leave_no_temporary_files(store: FileBlobStore) -> None:
    keys = [store.put(os.urandom(100)) for _ in range(20)]
    assert sorted(p.name for p in files(store.root)) == sorted(keys)


def test_concurrent_puts_of_the_same_content_give_one_complete_file(store: FileBlobStore) -> None:
    data = os.urandom(2 * 1024 * 1024)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store.put(data))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    key = hashlib.sha256(data).hexdigest()
    assert results == [key] * 8
    assert [p.name for p in files(store.root)] == [key]
    assert b"".join(store.read_chunks(key)) == data


def test_read_chunks_in_the_asked_size(store: FileBlobStore) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    key = store.put(data)
    chunks = list(store.read_chunks(key, chunk_size=4096))
    assert [len(c) for c in chunks] == [4096, 4096, 2048]
    assert b"".join(chunks) == data
    assert b"".join(store.read_chunks(key)) == data


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
def test_bad_keys_raise_key_error(store: FileBlobStore, key: str) -> None:
    with pytest.raises(KeyError):
        list(store.read_chunks(key))
    assert not store.exists(key)


def test_a_key_with_a_trailing_newline_is_a_bad_key(store: FileBlobStore) -> None:
    key = store.put(b"stored")
    with pytest.raises(KeyError):
        list(store.read_chunks(key + "\n"))
