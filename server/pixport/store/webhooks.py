"""Webhook deliveries: enqueued with the job's final event, claimed like queue items, logged per attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from pixport.domain.webhooks import Attempt, Delivery, DeliveryState
from pixport.store.db import Connection
from pixport.store.queries import QUERIES


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    organization_id: str
    job_id: str
    url: str
    payload: dict[str, Any]
    attempt_count: int
    created_at: datetime


async def enqueue_delivery(
    connection: Connection, delivery_id: str, organization_id: str, job_id: str, url: str, body: dict[str, Any]
) -> None:
    """Called in the transaction that finishes the job: the delivery exists iff the job finished."""
    await connection.execute(QUERIES["insert_delivery"], delivery_id, organization_id, job_id, url, body)
    await connection.execute(QUERIES["notify_webhooks"])


def _delivery(row: asyncpg.Record, attempts: list[Attempt]) -> Delivery:
    return Delivery(
        id=row["id"], job_id=row["job_id"], url=row["url"], state=DeliveryState(row["state"]),
        attempt_count=row["attempt_count"],
        next_attempt_at=row["next_attempt_at"] if row["state"] in ("pending", "delivering") else None,
        last_status_code=row["last_status_code"], last_error=row["last_error"], created_at=row["created_at"],
        delivered_at=row["delivered_at"], attempts=tuple(attempts),
    )


class WebhookStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedDelivery]:
        rows = await self._pool.fetch(QUERIES["claim_deliveries"], owner, lease_seconds, limit)
        return [ClaimedDelivery(**dict(row)) for row in rows]

    async def settle(
        self, delivery: ClaimedDelivery, owner: str, *, state: DeliveryState, status_code: int | None,
        error: str | None, duration_ms: int, excerpt: str | None, retry_in_seconds: float | None,
    ) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                QUERIES["record_attempt"], delivery.id, status_code, error, duration_ms, excerpt
            )
            await connection.execute(
                QUERIES["settle_delivery"], delivery.id, owner, state.value, status_code, error, retry_in_seconds
            )

    async def _with_attempts(self, rows: list[asyncpg.Record]) -> list[Delivery]:
        attempts: dict[str, list[Attempt]] = {}
        for row in await self._pool.fetch(QUERIES["list_attempts"], [r["id"] for r in rows]):
            attempts.setdefault(row["delivery_id"], []).append(Attempt(
                attempted_at=row["attempted_at"], status_code=row["status_code"], error=row["error"],
                duration_ms=row["duration_ms"], response_excerpt=row["response_excerpt"],
            ))
        return [_delivery(row, attempts.get(row["id"], [])) for row in rows]

    async def list_deliveries(
        self, organization_id: str, job_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[Delivery]:
        rows = await self._pool.fetch(
            QUERIES["list_deliveries"], organization_id, job_id, before[0] if before else None,
            before[1] if before else None, limit,
        )
        return await self._with_attempts(rows)

    async def get(self, organization_id: str, delivery_id: str) -> Delivery | None:
        row = await self._pool.fetchrow(QUERIES["get_delivery"], delivery_id, organization_id)
        return (await self._with_attempts([row]))[0] if row else None

    async def redeliver(self, organization_id: str, delivery_id: str) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            found = await connection.fetchval(QUERIES["redeliver"], delivery_id, organization_id)
            if found is not None:
                await connection.execute(QUERIES["notify_webhooks"])
        return found is not None
