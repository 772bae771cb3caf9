"""Retention and blob collection on a real PostgreSQL, with a small real file-backed blob store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest
from integration_support import create, stored
from pixport.blobs.base import BlobStoreUnavailable
from pixport.domain.blob_records import RecordingBlobStore, collect_blobs
from pixport.domain.queue import StoredImage
from pixport.runtime.housekeeping import run_blob_gc
from pixport.store.housekeeping import BlobLedgerStore, RetentionStore
from pixport.store.jobs import JobStore
from pixport.store.queue import QueueStore

pytestmark = pytest.mark.usefixtures("empty_queue")


class DirectoryBlobs:
    """The BlobStore contract over a directory (content-addressed, whole objects)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    async def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        (self.root / key).write_bytes(data)
        return key

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        written = [await self.put(data) for data in blobs]
        assert keys is None or list(keys) == written  # the caller's keys are the content's
        return written

    async def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    async def _chunks(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        data = (self.root / key).read_bytes()
        for start in range(0, len(data), chunk_size):
            yield data[start:start + chunk_size]

    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        return self._chunks(key, chunk_size)

    async def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        return 0

    async def check(self) -> None:
        return None


class BucketOutageBlobs(DirectoryBlobs):
    """Its first delete and its first sweep fail as they do while the bucket is missing."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failed = {"delete": False, "sweep": False}
        self.swept = asyncio.Event()

    def _outage(self, call: str) -> None:
        if not self.failed[call]:
            self.failed[call] = True
            raise BlobStoreUnavailable("bucket s3://gone does not exist")

    async def delete(self, key: str) -> None:
        self._outage("delete")
        await super().delete(key)

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        self._outage("sweep")
        self.swept.set()
        return 0


def image_with_blobs(original: bytes, rendition: bytes) -> StoredImage:
    base = stored(original)
    keys = {"original": hashlib.sha256(original).hexdigest(), "mini": hashlib.sha256(rendition).hexdigest()}
    analysis = {"original": {"key": keys["original"]}, "renditions": {"mini": {"key": keys["mini"]}}}
    return StoredImage(base.sha256, base.format, base.mime_type, base.width, base.height, base.byte_size, analysis)


async def age(pool: asyncpg.Pool, *keys: str) -> None:
    await pool.execute(
        "UPDATE blobs SET last_written_at = now() - interval '2 hours' WHERE key = ANY($1::text[])", list(keys)
    )


@pytest.fixture
def blobs(tmp_path: Path) -> DirectoryBlobs:
    return DirectoryBlobs(tmp_path / "blobs")


@pytest.fixture
async def clean_ledger(pool: asyncpg.Pool) -> None:
    """Other tests' ledger rows stay young: collection here sees only this test's old rows."""
    await pool.execute("UPDATE blobs SET last_written_at = now() + interval '1 day'")


@pytest.mark.usefixtures("clean_ledger")
async def test_collection_removes_only_old_unreferenced_blobs(
    pool: asyncpg.Pool, org: str, blobs: DirectoryBlobs
) -> None:
    ledger = BlobLedgerStore(pool)
    writer = RecordingBlobStore(blobs, ledger)
    kept_original, kept_mini, orphan, young = b"original v1", b"mini v1", b"orphan", b"young orphan"
    keys = await writer.put_all([kept_original, kept_mini, orphan, young])
    await create(pool, org, "photo")
    queue = QueueStore(pool)
    [item] = await queue.claim("w", 60, 1)
    assert await queue.finish_imported(item, "w", image_with_blobs(kept_original, kept_mini)) is not None
    await age(pool, *keys[:3])
    assert await collect_blobs(ledger, blobs, 3600, 100) == 1
    assert [await blobs.exists(key) for key in keys] == [True, True, False, True]
    assert await pool.fetchval("SELECT count(*) FROM blobs WHERE key = ANY($1::text[])", keys) == 3

    # A re-import with other bytes supersedes both blobs: they go once old.
    new_keys = await writer.put_all([b"original v2", b"mini v2"])
    await create(pool, org, "photo")
    [item] = await queue.claim("w", 60, 1)
    assert await queue.finish_imported(item, "w", image_with_blobs(b"original v2", b"mini v2")) is not None
    await age(pool, *keys[:2], *new_keys)
    assert await collect_blobs(ledger, blobs, 3600, 100) == 2
    assert [await blobs.exists(key) for key in keys[:2] + new_keys] == [False, False, True, True]


@pytest.mark.usefixtures("clean_ledger")
async def test_a_write_racing_collection_keeps_its_blob(pool: asyncpg.Pool, blobs: DirectoryBlobs) -> None:
    ledger = BlobLedgerStore(pool)
    writer = RecordingBlobStore(blobs, ledger)
    data = b"written twice"
    [key] = await writer.put_all([data])
    await age(pool, key)
    deleting, release = asyncio.Event(), asyncio.Event()

    async def slow_delete(keys: list[str]) -> None:
        for doomed in keys:
            await blobs.delete(doomed)
        deleting.set()
        await release.wait()

    collection = asyncio.create_task(ledger.collect(3600, 100, slow_delete))
    await deleting.wait()
    second_write = asyncio.create_task(writer.put(data))
    await asyncio.sleep(0.3)
    assert not second_write.done()  # waits for the collector's row lock before writing the bytes
    release.set()
    assert await collection == [key]
    assert await second_write == key
    assert await blobs.exists(key)
    young = await pool.fetchval("SELECT last_written_at > now() - interval '1 minute' FROM blobs WHERE key = $1", key)
    assert young is True
    assert await collect_blobs(ledger, blobs, 3600, 100) == 0

    # The other order: a write that recorded first makes the row young, so collection skips it.
    await age(pool, key)
    await writer.put(data)
    assert await collect_blobs(ledger, blobs, 3600, 100) == 0
    assert await blobs.exists(key)


async def test_retention_prunes_only_old_finished_jobs(pool: asyncpg.Pool, org: str) -> None:
    queue, jobs = QueueStore(pool), JobStore(pool)
    old = await create(pool, org, "a", "b")
    recent = await create(pool, org, "c")
    for item in await queue.claim("w", 60, 10):
        await queue.finish_failed(item, "w", "HTTP 404")
    unfinished = await create(pool, org, "d")
    await pool.execute(
        "UPDATE import_jobs SET finished_at = now() - interval '31 days' WHERE id = $1", old
    )
    await pool.execute("UPDATE import_jobs SET created_at = now() - interval '40 days' WHERE id = $1", unfinished)
    await pool.execute(
        "INSERT INTO webhook_deliveries (id, organization_id, job_id, url, payload, state) VALUES"
        " ($1 || '-done', $2, $1, 'http://127.0.0.1/hook', '{}', 'delivered'),"
        " ($1 || '-retrying', $2, $1, 'http://127.0.0.1/hook', '{}', 'pending')", old, org,
    )
    await pool.execute(
        "INSERT INTO webhook_attempts (delivery_id, duration_ms) VALUES ($1 || '-done', 5)", old
    )

    async def counts(job_id: str) -> tuple[int, int, int]:
        row = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM import_items WHERE job_id = $1),"
            " (SELECT count(*) FROM job_events WHERE job_id = $1),"
            " (SELECT count(*) FROM webhook_deliveries WHERE job_id = $1)", job_id,
        )
        assert row is not None
        return (row[0], row[1], row[2])

    before = {job_id: await counts(job_id) for job_id in (old, recent, unfinished)}
    assert before[old] == (2, 4, 2)
    assert await RetentionStore(pool).prune(30, batch=1) >= 2 + 4 + 1
    assert await counts(old) == (0, 0, 1)  # the delivery still being retried stays
    assert await pool.fetchval("SELECT count(*) FROM webhook_attempts WHERE delivery_id = $1", f"{old}-done") == 0
    assert await counts(recent) == before[recent]
    assert await counts(unfinished) == before[unfinished]
    job = await jobs.get_job(org, old)
    assert job is not None and job.finished and job.items == ()
    assert job.overview is not None and (job.overview.total, job.overview.failed) == (2, 2)  # counters stay
    assert await RetentionStore(pool).prune(30) == 0  # done once


@pytest.mark.usefixtures("clean_ledger")
async def test_the_collector_rides_out_a_blob_store_outage(pool: asyncpg.Pool, tmp_path: Path) -> None:
    blobs = BucketOutageBlobs(tmp_path / "blobs")
    [key] = await RecordingBlobStore(blobs, BlobLedgerStore(pool)).put_all([b"orphan during an outage"])
    await age(pool, key)
    stop = asyncio.Event()
    collector = asyncio.create_task(run_blob_gc(stop, pool, blobs, grace_seconds=3600, interval_seconds=0.05))
    # Round 1: the delete fails (the ledger row stays); round 2: collected, the sweep fails; round 3: swept.
    swept = asyncio.create_task(blobs.swept.wait())
    await asyncio.wait([collector, swept], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    swept.cancel()
    stop.set()
    await collector  # returns: an outage never ends the loop
    assert blobs.failed == {"delete": True, "sweep": True} and blobs.swept.is_set()
    assert not await blobs.exists(key)
    assert await pool.fetchval("SELECT count(*) FROM blobs WHERE key = $1", key) == 0
