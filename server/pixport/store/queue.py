"""The work queue: items claimed with FOR UPDATE SKIP LOCKED under a lease, and their outcomes."""

from __future__ import annotations

from typing import Any

import asyncpg

from pixport.domain.ids import new_media_id
from pixport.domain.queue import ClaimedItem, Outcome, StoredImage
from pixport.domain.records import ItemStatus
from pixport.store.db import Connection
from pixport.store.jobs import append_event, finish_job_if_done, image_ref
from pixport.store.queries import QUERIES

__all__ = ["ClaimedItem", "Outcome", "QueueStore", "StoredImage"]


def _event_payload(item: ClaimedItem, outcome: Outcome) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "status": outcome.status.value, "externalId": item.external_id, "title": item.title,
    }
    if outcome.reason is not None:
        payload["reason"] = outcome.reason
    if outcome.image is not None:
        payload["image"] = outcome.image.as_payload()
    return payload


class QueueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedItem]:
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
        outcome = Outcome(ItemStatus.FAILED, reason, None)
        return await self._finish(item, owner, outcome, image_id=None)

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        """Upsert by (organisation, systemName, externalId): same bytes → skipped, other bytes → same
        mediaId updated, unknown key → created. None if the lease was lost (job cancelled, or
        another worker took over after the lease expired)."""
        async with self._pool.acquire() as connection, connection.transaction():
            # Lock order everywhere: job, then item, then image. Cancellation takes the same order.
            await connection.execute(QUERIES["lock_job"], item.job_id)
            if await connection.fetchrow(QUERIES["lock_owned_item"], item.id, owner) is None:
                return None
            key = (item.organization_id, item.system_name, item.external_id)
            existing = await connection.fetchrow(QUERIES["lock_image_by_key"], *key)
            if existing is None:
                media_id = await connection.fetchval(
                    QUERIES["insert_image"], new_media_id(), *key, item.title, item.metadata, item.url,
                    stored.sha256, stored.format, stored.mime_type, stored.width, stored.height,
                    stored.byte_size, stored.analysis, stored.phash, item.album_id,
                )
                if media_id is None:  # a concurrent import of the same key won the insert
                    existing = await connection.fetchrow(QUERIES["lock_image_by_key"], *key)
            if existing is not None:
                media_id = existing["id"]
                if existing["sha256"] == stored.sha256:
                    status, reason = ItemStatus.SKIPPED, "already exists"
                else:
                    await connection.execute(
                        QUERIES["update_image"], media_id, item.title, item.metadata, item.url, stored.sha256,
                        stored.format, stored.mime_type, stored.width, stored.height, stored.byte_size,
                        stored.analysis, stored.phash,
                    )
                    status, reason = ItemStatus.SUCCESS, None
            else:
                status, reason = ItemStatus.SUCCESS, None
            summary = await connection.fetchrow(QUERIES["image_summary"], media_id)
            assert summary is not None  # locked or inserted in this transaction
            outcome = Outcome(status, reason, image_ref(summary))
            await self._record(connection, item, outcome, media_id)
        return outcome

    async def _finish(self, item: ClaimedItem, owner: str, outcome: Outcome, image_id: str | None) -> Outcome | None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(QUERIES["lock_job"], item.job_id)
            if await connection.fetchrow(QUERIES["lock_owned_item"], item.id, owner) is None:
                return None
            if outcome.status is ItemStatus.FAILED:
                await connection.execute(
                    QUERIES["mark_image_unprocessable"], item.organization_id, item.system_name, item.external_id,
                    outcome.reason,
                )
            await self._record(connection, item, outcome, image_id)
        return outcome

    async def _record(
        self, connection: Connection, item: ClaimedItem, outcome: Outcome, image_id: str | None
    ) -> None:
        summary = outcome.image.as_payload() if outcome.image is not None else None
        await connection.execute(
            QUERIES["finish_item"], item.id, outcome.status.value, outcome.reason, image_id, summary
        )
        await append_event(connection, item.job_id, "item_finished", _event_payload(item, outcome))
        await finish_job_if_done(connection, item.job_id)
