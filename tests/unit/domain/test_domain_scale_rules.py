"""Rules moved out of the store: job end, skipped-on-same-bytes, payloads, and record-before-write."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from pixport.domain.blob_records import RecordingBlobStore, blob_key
from pixport.domain.jobs import cancelled_item_payload, is_done, job_finished_payload, webhook_body
from pixport.domain.queue import import_status
from pixport.domain.records import ItemStatus, JobState, Overview


def test_a_job_is_done_when_nothing_is_pending() -> None:
    assert is_done(Overview(total=2, success=1, failed=1))
    assert not is_done(Overview(total=2, success=1, pending=1))


def test_same_bytes_are_skipped_other_bytes_imported() -> None:
    assert import_status("abc", "abc") == (ItemStatus.SKIPPED, "already exists")
    assert import_status("abc", "def") == (ItemStatus.SUCCESS, None)
    assert import_status(None, "def") == (ItemStatus.SUCCESS, None)


def test_payloads() -> None:
    counts = Overview(total=3, success=2, cancelled=1)
    assert job_finished_payload(JobState.SUCCESS, counts) == {"state": "success", "overview": counts.as_dict()}
    assert cancelled_item_payload("e1", "t") == {
        "status": "cancelled", "reason": "job cancelled", "externalId": "e1", "title": "t",
    }
    assert webhook_body("job", JobState.CANCELLED, counts, {"k": 1}) == {
        "id": "job", "state": "cancelled", "overview": counts.as_dict(), "context": {"k": 1},
    }


class Journal:
    def __init__(self) -> None:
        self.events: list[tuple[str, list[str]]] = []


class MemoryLedger:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def record(self, keys: Sequence[str]) -> None:
        self._journal.events.append(("record", list(keys)))

    async def collect(
        self, grace_seconds: float, limit: int, delete: Callable[[list[str]], Awaitable[None]]
    ) -> list[str]:
        return []


class MemoryBlobs:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def put(self, data: bytes) -> str:
        self._journal.events.append(("write", [blob_key(data)]))
        return blob_key(data)

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        written = [await self.put(data) for data in blobs]
        assert keys is None or list(keys) == written  # the caller's keys are the content's
        return written

    async def exists(self, key: str) -> bool:
        return False

    async def _none(self) -> AsyncIterator[bytes]:
        empty: tuple[bytes, ...] = ()
        for chunk in empty:
            yield chunk

    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        return self._none()

    async def delete(self, key: str) -> None:
        return None

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        return 0

    async def check(self) -> None:
        return None


async def test_keys_are_recorded_before_their_bytes_are_written() -> None:
    journal = Journal()
    store = RecordingBlobStore(MemoryBlobs(journal), MemoryLedger(journal))
    keys = await store.put_all([b"b", b"a", b"b"])
    a, b = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    assert keys == [b, a, b]
    assert journal.events == [("record", sorted([a, b])), ("write", [b]), ("write", [a]), ("write", [b])]
    assert await store.put(b"c") == blob_key(b"c")
    assert journal.events[-2][0] == "record"
