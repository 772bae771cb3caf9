"""Import jobs: creation, reads, cancellation, and the event log they write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from pixport.domain.batch import BatchRequest
from pixport.domain.jobs import (
    CANCELLED_REASON,
    Admission,
    cancelled_item_payload,
    final_state,
    is_done,
    job_finished_payload,
    job_started_payload,
    webhook_body,
)
from pixport.domain.records import (
    DuplicateRef,
    ImageRef,
    ItemStatus,
    ItemView,
    JobEvent,
    JobState,
    JobView,
    Overview,
)
from pixport.domain.webhooks import new_delivery_id
from pixport.store.db import Connection
from pixport.store.queries import QUERIES
from pixport.store.webhooks import enqueue_delivery


def image_ref(row: asyncpg.Record | dict[str, Any]) -> ImageRef | None:
    if row["media_id"] is None:
        return None
    analysis = row["analysis"] or {}
    duplicate = analysis.get("duplicate_of")
    return ImageRef(
        media_id=row["media_id"], width=row["width"], height=row["height"], mime_type=row["mime_type"],
        sha256=row["sha256"], renditions=tuple(sorted(analysis.get("renditions", {}))),
        duplicate_of=DuplicateRef(duplicate["media_id"], duplicate["distance"]) if duplicate else None,
    )


def _item_view(row: asyncpg.Record) -> ItemView:
    status = ItemStatus(row["status"])
    return ItemView(
        status=ItemStatus.PENDING if status is ItemStatus.RUNNING else status,
        reason=row["reason"] if status.final else None,
        external_id=row["external_id"], title=row["title"],
        image=ImageRef.from_payload(row["image_summary"])
        if status in (ItemStatus.SUCCESS, ItemStatus.SKIPPED) and row["image_summary"] else None,
        attempts=row.get("attempts") or 0,
        last_error=row["reason"] if not status.final else None,  # a retry's reason, set by requeue
    )


def counters(row: asyncpg.Record) -> Overview:
    """The job's per-status counters (kept by the items' triggers, see migration 0007)."""
    pending, success, skipped = row["pending_count"], row["success_count"], row["skipped_count"]
    failed, cancelled = row["failed_count"], row["cancelled_count"]
    return Overview(
        total=pending + success + skipped + failed + cancelled, success=success, skipped=skipped,
        failed=failed, cancelled=cancelled, pending=pending,
    )


def _job_view(row: asyncpg.Record, items: tuple[ItemView, ...] | None = None) -> JobView:
    return JobView(
        id=row["id"], organization_id=row["organization_id"], system_name=row["system_name"],
        state=JobState(row["state"]), started_at=row["created_at"], finished_at=row["finished_at"],
        item_count=row["item_count"], last_sequence=row["last_sequence"], webhook_url=row["webhook_url"],
        context=row["context"], items=items, overview=counters(row),
    )


async def admit_under_lock(connection: Connection, organization_id: str, admit: Admission) -> None:
    """Run the quota check with the organisation's row locked until the caller's transaction ends,
    so concurrent requests are admitted one at a time against the same usage."""
    limit = await connection.fetchval(QUERIES["lock_organization_quota"], organization_id)
    await admit_locked(connection, organization_id, limit, admit)


async def admit_locked(connection: Connection, organization_id: str, limit: int | None, admit: Admission) -> None:
    window = await connection.fetch(QUERIES["usage_window"], organization_id) if limit is not None else []
    now = await connection.fetchval(QUERIES["database_now"])
    pending = await connection.fetchrow(QUERIES["pending_items"], organization_id)
    assert pending is not None  # an aggregate always returns one row
    admit(limit, [(row["created_at"], row["item_count"]) for row in window], now,
          (pending["organization"], pending["everyone"]))


async def append_event(
    connection: Connection, job_id: str, kind: str, payload: dict[str, Any], *, notify: bool = True
) -> int:
    """Append to the job's log under the job row's lock, so sequences have no gaps, and wake watchers."""
    return await append_events(connection, job_id, kind, [payload], notify=notify)


async def append_events(
    connection: Connection, job_id: str, kind: str, payloads: list[dict[str, Any]], *, notify: bool = True
) -> int:
    """Append several entries with consecutive sequences in two statements; returns the last sequence.
    The caller holds the job row's lock (or is the transaction that created the job)."""
    if not payloads:
        return int(await connection.fetchval(QUERIES["last_event_sequence"], job_id))
    last = int(await connection.fetchval(QUERIES["reserve_event_sequences"], job_id, len(payloads)))
    await connection.execute(QUERIES["insert_events"], job_id, last - len(payloads), kind, payloads)
    if notify:
        await notify_job_events(connection, [f"{job_id}:{last}"])
    return last


async def notify_job_events(connection: Connection, positions: list[str]) -> None:
    """One round trip wakes the watchers of every job in `positions` ("job:sequence")."""
    if positions:
        await connection.execute(QUERIES["notify_job_events"], positions)


async def overview(connection: Connection, job_id: str) -> Overview:
    row = await connection.fetchrow(QUERIES["job_counters"], job_id)
    return counters(row) if row is not None else Overview()


async def recount(connection: Connection, job_id: str) -> Overview:
    """The job's overview counted from its items: only for checks of the counters (tests, bench)."""
    rows = await connection.fetch(QUERIES["count_items"], job_id)
    return Overview.from_counts({row["status"]: row["n"] for row in rows})


class JobStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_job(
        self, job_id: str, organization_id: str, batch: BatchRequest, admit: Admission, *,
        fingerprint: str | None = None, replay: Callable[[str | None], None] | None = None,
    ) -> str:
        """Store the job, its items and its first event in one transaction; returns the job id
        (an earlier job's id when the request id was already used). `admit` sees the quota and the
        last 24 hours' usage under the organisation's lock, so concurrent batches cannot overshoot."""
        async with self._pool.acquire() as connection, connection.transaction():
            limit = await connection.fetchval(QUERIES["lock_organization_quota"], organization_id)
            if batch.request_id:
                await connection.execute(QUERIES["expire_request_id"], organization_id, batch.request_id)
                existing = await connection.fetchrow(
                    QUERIES["get_job_by_request_id"], organization_id, batch.request_id
                )
                if existing is not None:
                    if replay is not None:
                        replay(existing["request_fingerprint"])
                    return str(existing["id"])
            await admit_locked(connection, organization_id, limit, admit)
            created = await connection.fetchval(
                QUERIES["insert_job"], job_id, organization_id, batch.system_name, batch.webhook or None,
                batch.context, batch.request_id or None, len(batch.images),
            )
            if created is None:
                raced = await connection.fetchrow(
                    QUERIES["get_job_by_request_id"], organization_id, batch.request_id
                )
                assert raced is not None  # the conflicting row is what made the insert do nothing
                if replay is not None:
                    replay(raced["request_fingerprint"])
                return str(raced["id"])
            if fingerprint is not None and batch.request_id:
                await connection.execute(QUERIES["set_request_fingerprint"], job_id, fingerprint)
            images = batch.images
            await connection.execute(
                QUERIES["insert_items"], job_id, organization_id,
                list(range(len(images))), [i.external_id for i in images], [i.url for i in images],
                [i.title for i in images], [i.metadata for i in images], [i.media_type for i in images],
            )
            started = Overview(total=len(images), pending=len(images))
            await connection.execute(QUERIES["insert_event"], job_id, 1, "job_started", job_started_payload(started))
            await connection.execute(QUERIES["notify_job_event"], f"{job_id}:1")
            await connection.execute(QUERIES["notify_queue"])
        return job_id

    async def get_job(self, organization_id: str, job_id: str, *, with_items: bool = True) -> JobView | None:
        # One snapshot, so the items agree with `last_sequence` (a watcher resumes from it).
        async with self._pool.acquire() as connection, connection.transaction(
            isolation="repeatable_read", readonly=True
        ):
            row = await connection.fetchrow(QUERIES["get_job"], job_id, organization_id)
            if row is None:
                return None
            if not with_items:
                return _job_view(row)
            items = await connection.fetch(QUERIES["get_items"], [job_id])
        return _job_view(row, tuple(_item_view(item) for item in items))

    async def list_jobs(
        self, organization_id: str, *, limit: int, before: tuple[datetime, str] | None, with_items: bool
    ) -> list[JobView]:
        rows = await self._pool.fetch(
            QUERIES["list_jobs"], organization_id, before[0] if before else None,
            before[1] if before else None, limit,
        )
        if not with_items or not rows:
            return [_job_view(row) for row in rows]
        items_by_job: dict[str, list[ItemView]] = {}
        for item in await self._pool.fetch(QUERIES["get_items"], [row["id"] for row in rows]):
            items_by_job.setdefault(item["job_id"], []).append(_item_view(item))
        return [_job_view(row, tuple(items_by_job.get(row["id"], ()))) for row in rows]

    async def cancel_job(self, organization_id: str, job_id: str) -> bool:
        """Cancel what is not processed yet; False if the job does not exist for this organisation."""
        async with self._pool.acquire() as connection, connection.transaction():
            job = await connection.fetchrow(QUERIES["get_job_for_update"], job_id)
            if job is None or job["organization_id"] != organization_id:
                return False
            if job["state"] != JobState.STARTED:
                return True
            # Set-based: one UPDATE for the items, one INSERT for their events, whatever the job's size.
            cancelled = await connection.fetch(QUERIES["cancel_items"], job_id, CANCELLED_REASON)
            await append_events(connection, job_id, "item_finished", [
                cancelled_item_payload(item["external_id"], item["title"]) for item in cancelled
            ], notify=False)
            if not await finish_job_if_done(connection, job_id, cancelled=True):
                await notify_job_events(connection, [f"{job_id}:0"])
        return True

    async def events_after(self, job_id: str, after_sequence: int) -> list[JobEvent]:
        rows = await self._pool.fetch(QUERIES["get_events"], job_id, after_sequence)
        return [JobEvent(job_id, row["sequence"], row["kind"], row["payload"], row["created_at"]) for row in rows]


async def finish_job_if_done(
    connection: Connection, job_id: str, *, cancelled: bool = False, counts: Overview | None = None
) -> bool:
    """Finish the job once no item is left: final state, final event and, if asked for, its webhook,
    all in the caller's transaction (which holds the job row's lock). Reads the job's counters (unless
    the caller read them under that lock already, `counts`), never its items. True if it finished the
    job now (its final event is then notified)."""
    if counts is None:
        counts = await overview(connection, job_id)
    if not is_done(counts):
        return False
    state = final_state(counts, cancelled=cancelled)
    finished = await connection.fetchrow(QUERIES["finish_job"], job_id, state.value)
    if finished is None:
        return False
    await append_event(connection, job_id, "job_finished", job_finished_payload(state, counts))
    if finished["webhook_url"]:
        await enqueue_delivery(
            connection, new_delivery_id(), finished["organization_id"], job_id, finished["webhook_url"],
            webhook_body(job_id, state, counts, finished["context"]),
        )
    return True
