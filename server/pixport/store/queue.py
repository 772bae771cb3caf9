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
from pixport.store.jobs import append_events, finish_job_if_done, image_ref, notify_job_events
from pixport.store.queries import QUERIES

__all__ = ["ClaimedItem", "Failure", "Imported", "Outcome", "QueueStore", "StoredImage"]


class QueueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedItem]:
        """Up to `limit` items, organisations taking turns; `reclaimed` marks an expired lease taken over."""
        rows = await self._pool.fetch(QUERIES["claim_items"], owner, lease_seconds, limit)
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
        """Finish several failed items in one transaction: their events (in the given order, with
        consecutive sequences per job), their jobs' ends and one NOTIFY round trip. Each result is
        None where the lease was lost (the item is then left alone); all or nothing otherwise."""
        if not failures:
            return []
        async with self._pool.acquire() as connection, connection.transaction():
            owned = await _lock_owned(connection, [(f.item, f.owner or f.item.lease_owner) for f in failures])
            kept = [f for f in failures if f.item.id in owned]
            outcomes: dict[int, Outcome] = {f.item.id: Outcome(ItemStatus.FAILED, f.reason, None) for f in kept}
            if kept:
                await connection.execute(
                    QUERIES["mark_images_unprocessable"], [f.item.organization_id for f in kept],
                    [f.item.system_name for f in kept], [f.item.external_id for f in kept],
                    [f.reason for f in kept],
                )
                await _record(connection, [(f.item, outcomes[f.item.id], None) for f in kept])
        return [outcomes.get(f.item.id) for f in failures]

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        """Upsert by (organisation, systemName, externalId): same bytes → skipped, other bytes → same
        mediaId updated, unknown key → created. None if the lease was lost (job cancelled, or
        another worker took over after the lease expired)."""
        return (await self.finish_imported_many([Imported(item, stored, owner)]))[0]

    async def finish_imported_many(self, imported: Sequence[Imported]) -> list[Outcome | None]:
        """finish_imported for several items in one transaction (events in the given order, one
        NOTIFY round trip); None where the lease was lost."""
        if not imported:
            return []
        async with self._pool.acquire() as connection, connection.transaction():
            owned = await _lock_owned(connection, [(i.item, i.owner or i.item.lease_owner) for i in imported])
            kept = [i for i in imported if i.item.id in owned]
            results: dict[int, tuple[Outcome, str]] = {}
            # Images locked in key order, so two batches sharing keys cannot deadlock.
            for entry in sorted(kept, key=lambda i: (i.item.organization_id, i.item.system_name, i.item.external_id)):
                results[entry.item.id] = await _upsert_image(connection, entry.item, entry.stored)
            await _record(connection, [(i.item, *results[i.item.id]) for i in kept])
        return [results[i.item.id][0] if i.item.id in results else None for i in imported]


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
    positions = []
    for job_id, payloads in by_job.items():
        last = await append_events(connection, job_id, "item_finished", payloads, notify=False)
        if not await finish_job_if_done(connection, job_id):
            positions.append(f"{job_id}:{last}")
    await notify_job_events(connection, positions)
