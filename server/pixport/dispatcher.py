"""Webhook delivery: signed per Standard Webhooks, retried on a schedule, durable in PostgreSQL.

Runs in worker processes next to the item loop. Deliveries are claimed with SKIP LOCKED under a
lease, so several processes share the queue and a delivery survives any restart."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from pixport.domain.webhooks import DEFAULT_SCHEDULE, DeliveryState, parse_retry_after, verdict, webhook_secret
from pixport.fetch import Fetcher, FetchError
from pixport.observability.metrics import WEBHOOK_ATTEMPTS
from pixport.store.db import DatabaseGate, is_connection_error
from pixport.store.webhooks import ClaimedDelivery, WebhookStore

log = logging.getLogger(__name__)
WEBHOOK_CHANNEL = "pixport_webhooks"
LEASE_SECONDS = 60.0
POST_TIMEOUT_SECONDS = 15.0
CONCURRENCY = 8
SWEEP_SECONDS = 1.0
# The metric's outcome label for each state an attempt leaves a delivery in.
_OUTCOMES = {DeliveryState.DELIVERED: "delivered", DeliveryState.PENDING: "retry", DeliveryState.FAILED: "failed"}


class WebhookDispatcher:
    def __init__(
        self, store: WebhookStore, fetcher: Fetcher, server_key: bytes, owner: str,
        schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._server_key = server_key
        self._owner = owner
        self._schedule = schedule
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._database = DatabaseGate("webhook dispatcher")

    def wake(self, *_args: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            free = CONCURRENCY - len(self._inflight)
            try:
                claimed = await self._store.claim(self._owner, LEASE_SECONDS, free) if free > 0 else []
                self._database.healthy()
            except Exception as error:
                if not is_connection_error(error):
                    raise
                # The database is away: no claims, no attempts spent; back off until it returns.
                self._database.failed(error)
                await self._database.wait()
                continue
            for delivery in claimed:
                task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.id}")
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if len(claimed) < free or free <= 0:
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=SWEEP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                self._wake.clear()
                for waiter in waiters:
                    waiter.cancel()
        if self._inflight:
            # An attempt cut short here is retried after its lease; never lost.
            await asyncio.wait(self._inflight, timeout=POST_TIMEOUT_SECONDS)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    def sign(self, delivery: ClaimedDelivery, body: str, at: datetime) -> dict[str, str]:
        secret = webhook_secret(self._server_key, delivery.organization_id)
        return {
            "content-type": "application/json",
            "user-agent": "pixport-webhooks/0.1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(delivery.id, at, body),
        }

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        headers = self.sign(delivery, body, datetime.now(UTC))
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        excerpt: str | None = None
        retry_after: float | None = None
        give_up = False
        try:
            result = await self._fetcher.post(delivery.url, body.encode(), headers, timeout=POST_TIMEOUT_SECONDS)
            status_code, excerpt = result.status, result.body_excerpt
            retry_after = parse_retry_after(result.headers.get("Retry-After"))
            if not 200 <= status_code < 300:
                error = f"receiver answered HTTP {status_code}"
            if status_code == 410:
                error, give_up = "receiver answered 410 Gone; not retried", True
        except FetchError as failure:
            error, give_up = failure.reason, not failure.retryable
        except Exception:
            log.exception("unexpected error delivering webhook %s", delivery.id)
            error = "internal error while delivering"
        duration_ms = int((time.perf_counter() - started) * 1000)
        outcome = verdict(delivery.attempt_count + 1, status_code, retry_after, self._schedule)
        state = DeliveryState.FAILED if give_up and outcome.state is not DeliveryState.DELIVERED else outcome.state
        retry_in = outcome.retry_in_seconds if state is DeliveryState.PENDING else None
        try:
            await self._store.settle(
                delivery, self._owner, state=state, status_code=status_code, error=error, duration_ms=duration_ms,
                excerpt=excerpt, retry_in_seconds=retry_in,
            )
        except Exception as failure:
            if not is_connection_error(failure):
                raise
            # The outcome could not be recorded: the lease expires and the attempt is made again
            # (receivers deduplicate on webhook-id, which stays the same).
            log.warning("webhook %s: could not record the attempt (%s); it will be retried", delivery.id, failure)
            return
        WEBHOOK_ATTEMPTS.labels(outcome=_OUTCOMES.get(state, state.value)).inc()
        log.info("webhook %s attempt %d → %s (%s)", delivery.id, delivery.attempt_count + 1, state.value,
                 status_code or error, extra={"job_id": delivery.job_id, "organization_id": delivery.organization_id,
                                              "attempt": delivery.attempt_count + 1, "duration_ms": duration_ms,
                                              "outcome": _OUTCOMES.get(state, state.value)})
