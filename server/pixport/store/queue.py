"""The work queue: items claimed with FOR UPDATE SKIP LOCKED under a lease, and their outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from pixport.domain.ids import new_media_id
from pixport.domain.queue import (
    ClaimedItem,
    Failure,
    Imported,
    Outcome,
    StoredImage,
    import_status,
    item_finished_payload,
)
from pixport.domain.records import ItemStatus
from pixport.store.db import Connection
from pixport.store.jobs import counters, finish_job_if_done, image_ref
from pixport.store.queries import QUERIES

__all__ = ["ClaimedItem", "Failure", "Imported", "Outcome", "QueueStore", "StoredImage"]


class QueueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedItem]:
        """Up to `limit` items, organisations taking turns; `reclaimed` marks an expired lease taken over."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(QUERIES["claim_planner_settings"])
            rows = await connection.fetch(QUERIES["claim_items"], owner, lease_seconds, limit)
        return [ClaimedItem(**dict(row)) for row in rows]

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool:
        result = await self._pool.execute(
            QUERIES["requeue_item"], item.id, owner, delay_seconds, reason, 1 if refund else 0
        )
        return result.endswith(" 1")

    async def extend_leases(self, items: list[ClaimedItem], lease_seconds: float) -> None:
        if items:
            await self._pool.execute(
                QUERIES["extend_leases"], [i.id for i in items], [i.lease_owner for i in items], lease_seconds
            )

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None:
        return (await self.finish_failed_many([Failure(item, reason, owner)]))[0]

    async def finish_failed_many(self, failures: Sequence[Failure]) -> list[Outcome | None]:
        """Finish several failed items in one transaction (see finish_many)."""
        return await self.finish_many(failures)

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        """Upsert by (organisation, systemName, externalId): same bytes → skipped, other bytes → same
        mediaId updated, unknown key → created. None if the lease was lost (job cancelled, or
        another worker took over after the lease expired)."""
        return (await self.finish_imported_many([Imported(item, stored, owner)]))[0]

    async def finish_imported_many(self, imported: Sequence[Imported]) -> list[Outcome | None]:
        """finish_imported for several items in one transaction (see finish_many)."""
        return await self.finish_many(imported)

    async def finish_many(self, finishes: Sequence[Failure | Imported]) -> list[Outcome | None]:
        """Finish failed and imported items together in one transaction: one lock of their jobs, their
        events in the given order with consecutive sequences per job, their jobs' ends, and one NOTIFY
        round trip for all. Each result is None where the lease was lost (that item is left alone);
        all or nothing otherwise."""
        if not finishes:
            return []
        async with self._pool.acquire() as connection, connection.transaction():
            owned = await _lock_owned(connection, [(f.item, f.owner or f.item.lease_owner) for f in finishes])
            kept = [f for f in finishes if f.item.id in owned]
            failed = [f for f in kept if isinstance(f, Failure)]
            results: dict[int, tuple[Outcome, str | None]] = {
                f.item.id: (Outcome(ItemStatus.FAILED, f.reason, None), None) for f in failed
            }
            if failed:
                await connection.execute(
                    QUERIES["mark_images_unprocessable"], [f.item.organization_id for f in failed],
                    [f.item.system_name for f in failed], [f.item.external_id for f in failed],
                    [f.reason for f in failed],
                )
            imported = [f for f in kept if isinstance(f, Imported)]
            # Images locked in key order, so two batches sharing keys cannot deadlock.
            results.update(await _upsert_images(connection, imported))
            await _record(connection, [(f.item, *results[f.item.id]) for f in kept])
        return [results[f.item.id][0] if f.item.id in results else None for f in finishes]


async def _upsert_images(connection: Connection, imported: Sequence[Imported]) -> dict[int, tuple[Outcome, str]]:
    """Upsert every image of a batch: the new keys in one statement (the common case: one round trip for
    the whole batch, and no read-back, since the row is exactly what was sent), the others one by one."""
    if not imported:
        return {}
    # Images locked in key order, so two batches sharing keys cannot deadlock.
    by_key = sorted(imported, key=lambda i: (i.item.organization_id, i.item.system_name, i.item.external_id))
    media_ids = [new_media_id() for _ in by_key]
    inserted = {row["id"] for row in await connection.fetch(
        QUERIES["insert_new_images"], media_ids, [i.item.organization_id for i in by_key],
        [i.item.system_name for i in by_key], [i.item.external_id for i in by_key],
        [i.item.title for i in by_key], [i.item.metadata for i in by_key], [i.item.url for i in by_key],
        [i.stored.sha256 for i in by_key], [i.stored.format for i in by_key], [i.stored.mime_type for i in by_key],
        [i.stored.width for i in by_key], [i.stored.height for i in by_key], [i.stored.byte_size for i in by_key],
        [i.stored.analysis for i in by_key], [i.stored.phash for i in by_key], [i.item.album_id for i in by_key],
    )}
    results: dict[int, tuple[Outcome, str]] = {}
    for media_id, entry in zip(media_ids, by_key, strict=True):
        if media_id in inserted:
            status, reason = import_status(None, entry.stored.sha256)
            summary = {"media_id": media_id, "width": entry.stored.width, "height": entry.stored.height,
                       "mime_type": entry.stored.mime_type, "sha256": entry.stored.sha256,
                       "analysis": entry.stored.analysis}
            results[entry.item.id] = Outcome(status, reason, image_ref(summary)), media_id
        else:  # the key existed before (or earlier in this batch): compare under its row lock
            results[entry.item.id] = await _upsert_image(connection, entry.item, entry.stored)
    return results


async def _upsert_image(connection: Connection, item: ClaimedItem, stored: StoredImage) -> tuple[Outcome, str]:
    key = (item.organization_id, item.system_name, item.external_id)
    existing = await connection.fetchrow(QUERIES["lock_image_by_key"], *key)
    media_id: str | None = None
    if existing is None:
        media_id = await connection.fetchval(
            QUERIES["insert_image"], new_media_id(), *key, item.title, item.metadata, item.url,
            stored.sha256, stored.format, stored.mime_type, stored.width, stored.height,
            stored.byte_size, stored.analysis, stored.phash, item.album_id,
        )
        if media_id is None:  # a concurrent import of the same key won the insert
            existing = await connection.fetchrow(QUERIES["lock_image_by_key"], *key)
    status, reason = import_status(existing["sha256"] if existing is not None else None, stored.sha256)
    if existing is not None:
        media_id = existing["id"]
        if status is ItemStatus.SUCCESS:
            await connection.execute(
                QUERIES["update_image"], media_id, item.title, item.metadata, item.url, stored.sha256,
                stored.format, stored.mime_type, stored.width, stored.height, stored.byte_size,
                stored.analysis, stored.phash,
            )
    assert media_id is not None
    summary = await connection.fetchrow(QUERIES["image_summary"], media_id)
    assert summary is not None  # locked or inserted in this transaction
    return Outcome(status, reason, image_ref(summary)), media_id


async def _lock_owned(connection: Connection, held: Sequence[tuple[ClaimedItem, str]]) -> set[int]:
    """Lock the items' jobs, then the items still held under these claims. Lock order everywhere:
    jobs (by id), then items (by id), then images; cancellation takes the same order."""
    await connection.execute(QUERIES["lock_jobs"], sorted({item.job_id for item, _ in held}))
    rows = await connection.fetch(
        QUERIES["lock_owned_items"], [item.id for item, _ in held], [owner for _, owner in held]
    )
    return {row["id"] for row in rows}


async def _record(connection: Connection, finished: Sequence[tuple[ClaimedItem, Outcome, str | None]]) -> None:
    """Final status of each item, its event, and its job's end if it was the last one."""
    await connection.execute(
        QUERIES["finish_items"], [item.id for item, _, _ in finished],
        [outcome.status.value for _, outcome, _ in finished], [outcome.reason for _, outcome, _ in finished],
        [image_id for _, _, image_id in finished],
        [outcome.image.as_payload() if outcome.image is not None else None for _, outcome, _ in finished],
    )
    by_job: dict[str, list[dict[str, Any]]] = {}
    for item, outcome, _ in finished:
        by_job.setdefault(item.job_id, []).append(item_finished_payload(item, outcome))
    for job_id, payloads in by_job.items():
        # Events, NOTIFY and the job's counters in one round trip; the job's end only when it is done.
        row = await connection.fetchrow(QUERIES["append_finished_events"], job_id, payloads)
        assert row is not None  # the job row is locked by this transaction
        await finish_job_if_done(connection, job_id, counts=counters(row))
