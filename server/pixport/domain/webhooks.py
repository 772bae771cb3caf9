"""Webhook deliveries: the retry schedule, what counts as delivered, and the signing secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pixport.domain.auth import READ_SCOPE, WRITE_SCOPE, Principal
from pixport.domain.errors import Conflict, NotFound
from pixport.domain.ids import looks_like_id

# Seconds to wait before each retry, after the immediate first attempt (Standard Webhooks-like).
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 86400)
JITTER = 0.2
MAX_RETRY_AFTER = 86400.0


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERING = "delivering"  # an attempt is in flight
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # gave up: schedule exhausted, 410 Gone, or a non-retryable answer


@dataclass(frozen=True)
class Attempt:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None


@dataclass(frozen=True)
class Delivery:
    id: str
    job_id: str
    url: str
    state: DeliveryState
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class Verdict:
    state: DeliveryState
    retry_in_seconds: float | None  # when state is PENDING


def webhook_secret(server_key: bytes, organization_id: str) -> str:
    """The organisation's Standard Webhooks signing secret (`whsec_` + base64 key), derived, not stored."""
    key = hmac.new(server_key, f"webhook-signing:{organization_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(key).decode()


def new_delivery_id() -> str:
    return "msg_" + base64.b32encode(random.SystemRandom().randbytes(15)).decode().lower()


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # HTTP-date form: fall back to the schedule
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def verdict(
    attempt_number: int, status_code: int | None, retry_after: float | None,
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE, rng: random.Random | None = None,
) -> Verdict:
    """What follows attempt `attempt_number` (1 = the first): delivered, retry later, or give up.
    `status_code` None means timeout or connection error."""
    if status_code is not None and 200 <= status_code < 300:
        return Verdict(DeliveryState.DELIVERED, None)
    retryable = status_code is None or status_code >= 500 or status_code in (408, 429)
    if not retryable or attempt_number > len(schedule):
        return Verdict(DeliveryState.FAILED, None)
    delay = schedule[attempt_number - 1]
    delay *= 1 + (rng or random.SystemRandom()).uniform(-JITTER, JITTER)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return Verdict(DeliveryState.PENDING, delay)


class WebhookLog(Protocol):
    """What reading the delivery log needs of the store (implemented by store.webhooks.WebhookStore)."""

    async def list_deliveries(
        self, organization_id: str, job_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[Delivery]: ...

    async def get(self, organization_id: str, delivery_id: str) -> Delivery | None: ...

    async def redeliver(self, organization_id: str, delivery_id: str) -> bool: ...


class Webhooks:
    """Reading the delivery log and asking for a redelivery."""

    def __init__(self, store: WebhookLog) -> None:
        self._store = store

    async def list_deliveries(self, principal: Principal, job_id: str, *, limit: int) -> list[Delivery]:
        principal.require(READ_SCOPE)
        if job_id and not looks_like_id(job_id):
            return []  # no job has such an id
        return await self._store.list_deliveries(principal.organization_id, job_id, limit=limit, before=None)

    async def get(self, principal: Principal, delivery_id: str) -> Delivery:
        principal.require(READ_SCOPE)
        found = await self._store.get(principal.organization_id, delivery_id) if looks_like_id(delivery_id) else None
        if found is None:
            raise NotFound(f"webhook delivery {delivery_id[:64]!r} not found")
        return found

    async def redeliver(self, principal: Principal, delivery_id: str) -> Delivery:
        principal.require(WRITE_SCOPE)
        if not looks_like_id(delivery_id):
            raise NotFound(f"webhook delivery {delivery_id[:64]!r} not found")
        if not await self._store.redeliver(principal.organization_id, delivery_id):
            await self.get(principal, delivery_id)  # NotFound unless it exists: then it is being attempted
            raise Conflict(f"webhook delivery {delivery_id!r} is being attempted right now; "
                           "redeliver it once this attempt has ended")
        return await self.get(principal, delivery_id)
