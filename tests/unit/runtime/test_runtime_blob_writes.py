"""Concurrent blob writes share one put_all of the file store; each caller returns once its blobs are durable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from pixport.blobs import FileBlobStore, blob_key
from pixport.runtime.blob_writes import CoalescedBlobWrites


class CountingFiles(FileBlobStore):
    """The real file store, counting its put_all calls (and able to fail the first one)."""

    def __init__(self, root: Path, fail_first: bool = False) -> None:
        super().__init__(root)
        self.calls: list[list[str]] = []
        self._fail_first = fail_first

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        self.calls.append(list(keys or []))
        if self._fail_first and len(self.calls) == 1:
            raise OSError("disk went away")
        return await super().put_all(blobs, keys)


def stored_files(root: Path) -> int:
    return len([path for path in root.rglob("*") if path.is_file()])


def keyed(*blobs: bytes) -> tuple[list[bytes], list[str]]:
    return list(blobs), [blob_key(data) for data in blobs]


async def test_writes_of_the_same_moment_are_one_call_with_each_blob_once(tmp_path: Path) -> None:
    inner = CountingFiles(tmp_path)
    writes = CoalescedBlobWrites(inner)
    on_disk_when_returned: list[bool] = []

    async def put(blobs: list[bytes], keys: list[str]) -> list[str]:
        answered = await writes.put_all(blobs, keys)
        on_disk_when_returned.append(all([await inner.exists(key) for key in keys]))
        return answered

    first, second, third = keyed(b"a", b"shared"), keyed(b"shared", b"b", b"b"), keyed(b"c")
    answers = await asyncio.gather(put(*first), put(*second), put(*third))
    assert answers == [first[1], second[1], third[1]]  # each caller's own keys, in its own order
    assert inner.calls == [[blob_key(data) for data in (b"a", b"shared", b"b", b"c")]]
    assert on_disk_when_returned == [True, True, True]
    assert stored_files(tmp_path) == 4


async def test_a_write_arriving_during_a_flush_goes_in_the_next_one(tmp_path: Path) -> None:
    inner = CountingFiles(tmp_path)
    writes = CoalescedBlobWrites(inner)
    first = asyncio.create_task(writes.put_all(*keyed(b"one")))
    await asyncio.sleep(0)  # the first flush has started
    await asyncio.sleep(0)
    second = asyncio.create_task(writes.put_all(*keyed(b"two")))
    await asyncio.gather(first, second)
    assert inner.calls == [[blob_key(b"one")], [blob_key(b"two")]]


async def test_a_failed_write_fails_each_of_its_callers_and_the_next_one_stands_alone(tmp_path: Path) -> None:
    inner = CountingFiles(tmp_path, fail_first=True)
    writes = CoalescedBlobWrites(inner)
    outcomes = await asyncio.gather(writes.put_all(*keyed(b"x")), writes.put_all(*keyed(b"y")),
                                    return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [OSError, OSError]
    assert not await inner.exists(blob_key(b"x")) and not await inner.exists(blob_key(b"y"))
    assert await writes.put_all(*keyed(b"x")) == [blob_key(b"x")]  # the retry
    assert await inner.exists(blob_key(b"x"))


async def test_unkeyed_and_empty_writes_and_mismatched_keys(tmp_path: Path) -> None:
    inner = CountingFiles(tmp_path)
    writes = CoalescedBlobWrites(inner)
    assert await writes.put_all([]) == []
    assert inner.calls == []
    assert await writes.put(b"alone") == blob_key(b"alone")  # unkeyed: straight to the store, which hashes
    assert await writes.put_all([b"unkeyed"]) == [blob_key(b"unkeyed")]
    assert inner.calls == [[], []]
    with pytest.raises(ValueError, match="1 keys for 2 blobs"):
        await writes.put_all([b"p", b"q"], [blob_key(b"p")])
    assert b"".join([chunk async for chunk in writes.read_chunks(blob_key(b"alone"))]) == b"alone"
    await writes.delete(blob_key(b"alone"))
    assert not await writes.exists(blob_key(b"alone"))
    assert await writes.sweep_temporary(0) == 0
    await writes.check()
