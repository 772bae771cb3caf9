"""Helpers shared by the integration tests: batches, claims, stored images, the event log."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pixport.domain.batch import BatchRequest, ImageSpec
from pixport.domain.ids import new_job_id
from pixport.store.jobs import JobStore
from pixport.store.queue import ClaimedItem, QueueStore, StoredImage


@dataclass(frozen=True)
class Database:
    dsn: str
    first_migration: list[str]  # what the session's first migrate() applied


def batch(*external_ids: str, system_name: str = "archive", request_id: str = "",
          context: dict[str, Any] | None = None) -> BatchRequest:
    return BatchRequest(
        system_name=system_name,
        images=tuple(
            ImageSpec(url=f"https://example.com/{e}.jpg", external_id=e, title=f"title {e}", metadata={"e": e})
            for e in external_ids
        ),
        request_id=request_id,
        context=context,
    )


def admit_all(
    limit: int | None, window: list[tuple[datetime, int]], now: datetime, pending: tuple[int, int] = (0, 0)
) -> None:
    """The admission check of create_job that lets every batch in (quota is not under test here)."""


async def create_job(pool: asyncpg.Pool, job_id: str, org: str, request: BatchRequest) -> str:
    return await JobStore(pool).create_job(job_id, org, request, admit_all)


async def create(pool: asyncpg.Pool, org: str, *external_ids: str, **options: Any) -> str:
    return await create_job(pool, new_job_id(), org, batch(*external_ids, **options))


async def claim_all(queue: QueueStore, owner: str, *, lease_seconds: float = 60.0) -> list[ClaimedItem]:
    claimed: list[ClaimedItem] = []
    while found := await queue.claim(owner, lease_seconds, 100):
        claimed += found
    return claimed


def stored(content: bytes, *, phash: int | None = None, renditions: tuple[str, ...] = ("full", "mini")) -> StoredImage:
    sha = hashlib.sha256(content).hexdigest()
    return StoredImage(
        sha256=sha, format="png", mime_type="image/png", width=len(content), height=1, byte_size=len(content),
        analysis={
            "original": {"key": sha, "mime_type": "image/png", "byte_size": len(content)},
            "renditions": {name: {"key": sha, "mime_type": "image/png"} for name in renditions},
            "phash": None if phash is None else f"{phash & (2**64 - 1):016x}",
        },
        phash=phash,
    )


async def event_log(pool: asyncpg.Pool, job_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    rows = await pool.fetch(
        "SELECT sequence, kind, payload FROM job_events WHERE job_id = $1 ORDER BY sequence", job_id
    )
    return [(row["sequence"], row["kind"], row["payload"]) for row in rows]


async def assert_contiguous_log(pool: asyncpg.Pool, job_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    """The log is 1..N without gaps, job_started first, job_finished last (and only once)."""
    log = await event_log(pool, job_id)
    assert [sequence for sequence, _, _ in log] == list(range(1, len(log) + 1))
    kinds = [kind for _, kind, _ in log]
    assert kinds[0] == "job_started"
    assert kinds[-1] == "job_finished"
    assert kinds.count("job_finished") == 1
    assert set(kinds[1:-1]) <= {"item_finished"}
    last = await pool.fetchval("SELECT last_sequence FROM import_jobs WHERE id = $1", job_id)
    assert last == len(log)
    return log


async def bulk_job(pool: asyncpg.Pool | asyncpg.Connection, org: str, count: int) -> str:
    """A job of `count` pending items in one INSERT ... SELECT (through the counting triggers)."""
    job_id = new_job_id()
    await pool.execute(
        "INSERT INTO import_jobs (id, organization_id, system_name, state, item_count, last_sequence)"
        " VALUES ($1, $2, 'archive', 'started', $3, 0)", job_id, org, count,
    )
    await pool.execute(
        "INSERT INTO import_items (job_id, organization_id, position, external_id, url, title)"
        " SELECT $1, $2, n, 'bulk-' || n, 'https://example.com/' || n, '' FROM generate_series(0, $3 - 1) AS n",
        job_id, org, count,
    )
    return job_id
