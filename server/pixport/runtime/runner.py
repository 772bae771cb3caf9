"""The worker process: claims items, keeps their leases alive, runs each one's journey, hands back on stop.

Any number of worker processes, on any number of machines, share one database: items are claimed with
FOR UPDATE SKIP LOCKED under a lease, and an expired lease is claimed again. What happens to one item is
not decided here but in domain/journey.py; this module is the loop around it and the composition root
(`run_worker`) that wires the real ports into it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

from pixport import blobs
from pixport.blobs import FileBlobStore
from pixport.config import Settings
from pixport.connectors import Connector, registry
from pixport.connectors.salesforce import SalesforceConnector
from pixport.dispatcher import WEBHOOK_CHANNEL, WebhookDispatcher
from pixport.domain import journey as domain_journey
from pixport.domain.blob_records import RecordingBlobStore
from pixport.domain.duplicates import DuplicateFinder
from pixport.domain.journey import Journey, Unfetchable
from pixport.domain.journey import Queue as JourneyQueue
from pixport.domain.queue import ClaimedItem, Outcome, StoredImage
from pixport.fetch import EgressPolicy, Fetcher, FetchError, FetchLimits
from pixport.imaging import Limits, PixelPool
from pixport.keys import load_server_key
from pixport.observability.metrics import LEASE_RECLAIMS
from pixport.runtime.blob_writes import CoalescedBlobWrites
from pixport.runtime.finishes import BatchedFinishes
from pixport.runtime.housekeeping import run_blob_gc, run_retention
from pixport.runtime.ledger import CoalescedLedger
from pixport.runtime.nearest import CoalescedPhashIndex
from pixport.sealing import Sealer
from pixport.store.db import DatabaseGate, create_pool, is_connection_error
from pixport.store.duplicates import PhashStore
from pixport.store.housekeeping import BlobLedgerStore
from pixport.store.notifications import listen
from pixport.store.queue import QueueStore
from pixport.store.sharinpix import SharinpixStore
from pixport.store.webhooks import WebhookStore

log = logging.getLogger(__name__)
QUEUE_CHANNEL = "pixport_queue"
# Wake-ups come from NOTIFY; this sweep only catches delayed retries and expired leases.
SWEEP_SECONDS = 2.0
# On stop, items get this long to finish before they are handed back to the queue.
SHUTDOWN_GRACE_SECONDS = 5.0
# While items are in flight, claim again only once this share of the slots is free: one round trip brings
# several items instead of one per finished item (the per-item overhead of dead links and small images).
CLAIM_BATCH_SHARE = 0.25
# Items whose work is done and that only wait for their batched finish to commit hold no bytes, so they do
# not take a slot (dead links and small images spend most of their time there); this bounds them all.
MAX_INFLIGHT_FACTOR = 4


class Claims(Protocol):
    """The queue's claim side (COMMON contract 5)."""

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedItem]: ...

    async def extend_leases(self, items: list[ClaimedItem], lease_seconds: float) -> None: ...


class ItemJourney(Protocol):
    """domain.journey.Journey, as the runner uses it."""

    async def run(self, item: ClaimedItem) -> object: ...

    async def hand_back(self, item: ClaimedItem) -> object: ...


class Runner:
    def __init__(
        self, *, claims: Claims, journey: ItemJourney, owner: str, concurrency: int, lease_seconds: float,
        sweep_seconds: float = SWEEP_SECONDS, grace_seconds: float = SHUTDOWN_GRACE_SECONDS,
        finishing: Callable[[], int] = lambda: 0,
    ) -> None:
        self.owner = owner
        self._finishing = finishing
        self._claims = claims
        self._journey = journey
        self._capacity = max(1, concurrency)
        self._lease_seconds = lease_seconds
        self._sweep_seconds = sweep_seconds
        self._grace_seconds = grace_seconds
        self._inflight: dict[asyncio.Task[object], ClaimedItem] = {}
        self._wake = asyncio.Event()
        self._claim_count = 0
        self._database = DatabaseGate("worker claims")

    def wake(self, *_args: object) -> None:
        """A NOTIFY on the queue channel (or anything else worth a look at the queue)."""
        self._wake.set()

    @property
    def inflight(self) -> list[ClaimedItem]:
        return list(self._inflight.values())

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(stop), name="lease-heartbeat")
        min_batch = max(1, int(self._capacity * CLAIM_BATCH_SHARE))
        try:
            while not stop.is_set():
                free = self._free()
                worth_claiming = free >= min_batch or (free > 0 and not self._inflight)
                claimed: list[ClaimedItem] = []
                if worth_claiming:
                    try:
                        claimed = await self._claim(free)
                    except Exception as error:
                        if not is_connection_error(error):
                            raise
                        # The database is away (restart, failover): keep the process, back off, claim nothing.
                        self._database.failed(error)
                        await self._sleep(stop, self._database.delay())
                        continue
                    self._database.healthy()
                for item in claimed:
                    self._start(item)
                if not worth_claiming or len(claimed) < free:  # no room, or the queue is drained: wait for news
                    await self._wait(stop)
            await self._hand_back_inflight()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    def _free(self) -> int:
        """Slots for new items: `concurrency` items at work, plus any number only waiting for their finish's
        commit, up to MAX_INFLIGHT_FACTOR times `concurrency` in all."""
        working = len(self._inflight) - min(self._finishing(), len(self._inflight))
        return max(0, min(self._capacity - working, self._capacity * MAX_INFLIGHT_FACTOR - len(self._inflight)))

    async def _claim(self, limit: int) -> list[ClaimedItem]:
        # A fresh token per claim: if this process ever reclaims its own expired item, the older
        # task's result is refused instead of racing the new one.
        self._claim_count += 1
        claimed = await self._claims.claim(f"{self.owner}:{self._claim_count}", self._lease_seconds, limit)
        for item in claimed:
            if item.reclaimed:  # the item's previous lease expired: its worker died or stalled
                LEASE_RECLAIMS.inc()
        return claimed

    def _start(self, item: ClaimedItem) -> None:
        task: asyncio.Task[object] = asyncio.create_task(self._journey.run(item), name=f"item-{item.id}")
        self._inflight[task] = item
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        item = self._inflight.pop(task, None)
        self._wake.set()
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and item is not None:
            # Only the queue's own calls raise out of a journey: the lease runs out and the item is claimed again.
            log.warning("recording the outcome of item %s failed: %s; it will be claimed again", item.id, error,
                        extra={"job_id": item.job_id, "organization_id": item.organization_id, "item": item.id})

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Extend the leases of items still in progress (waiting for a pixel process, a slow origin)."""
        interval = max(self._lease_seconds / 3, 0.05)
        while not stop.is_set():
            await asyncio.sleep(interval)
            try:
                await self._claims.extend_leases(self.inflight, self._lease_seconds)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                log.warning("extending leases failed: %s", error)

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until a NOTIFY, a finished item, a stop, or the sweep interval."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._sweep_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wake.clear()
            for waiter in waiters:
                waiter.cancel()

    @staticmethod
    async def _sleep(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _hand_back_inflight(self) -> None:
        """On stop, let items finish for a moment, then hand the rest straight back (no waiting for leases)."""
        if not self._inflight:
            return
        _finished, pending = await asyncio.wait(list(self._inflight), timeout=self._grace_seconds)
        for task in pending:
            item = self._inflight.get(task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if item is not None:
                try:
                    await self._journey.hand_back(item)
                except Exception as error:  # its lease expires instead
                    if not is_connection_error(error):
                        raise
                    log.warning("handing item %s back failed: %s", item.id, error)


# --- Adapters from the real clients to the journey's ports ------------------------------------------------


class GatedQueue:
    """The queue's writes as the journey's Queue port, waiting out a database outage (up to a lease)
    instead of failing: work already done is recorded once the database is back, and no attempt is
    spent on an outage."""

    def __init__(self, inner: JourneyQueue, lease_seconds: float) -> None:
        self._inner = inner
        self._gate = DatabaseGate("worker results")
        self._patience = lease_seconds

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool:
        return await self._gate.retry(
            lambda: self._inner.requeue(item, owner, delay_seconds, reason, refund=refund), give_up_after=self._patience
        )

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None:
        return await self._gate.retry(lambda: self._inner.finish_failed(item, owner, reason),
                                      give_up_after=self._patience)

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        return await self._gate.retry(lambda: self._inner.finish_imported(item, owner, stored),
                                      give_up_after=self._patience)


class GatedDuplicates:
    """Near-duplicate search that waits out a database outage like the queue's writes."""

    def __init__(self, inner: DuplicateFinder, lease_seconds: float) -> None:
        self._inner = inner
        self._gate = DatabaseGate("near-duplicate search")
        self._patience = lease_seconds

    async def annotate(
        self, organization_id: str, system_name: str, external_id: str, stored: StoredImage
    ) -> StoredImage:
        return await self._gate.retry(
            lambda: self._inner.annotate(organization_id, system_name, external_id, stored),
            give_up_after=self._patience,
        )


class GuardedUrls:
    """The SSRF-guarded Fetcher as the journey's UrlSource."""

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher

    async def fetch(self, url: str, headers: Mapping[str, str] | None) -> bytes:
        try:
            return (await self._fetcher.fetch(url, headers)).data
        except FetchError as error:
            raise Unfetchable(error.reason, retryable=error.retryable, retry_after=error.retry_after_seconds) from None


class TranslatedConnector:
    """A connector whose FetchErrors reach the journey as Unfetchable."""

    def __init__(self, connector: Connector) -> None:
        self.name = connector.name
        self._connector = connector

    async def fetch(self, organization_id: str, ref: str) -> bytes:
        try:
            return await self._connector.fetch(organization_id, ref)
        except FetchError as error:
            raise Unfetchable(error.reason, retryable=error.retryable, retry_after=error.retry_after_seconds) from None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def run_worker(settings: Settings, dsn: str) -> None:
    """The composition root: real database, fetcher, pixel pool, blob store and connectors, until SIGTERM."""
    pool = await create_pool(dsn, max_size=max(4, settings.worker_concurrency + 2))
    fetcher = Fetcher(
        EgressPolicy.from_env({"PIXPORT_FETCH_ALLOW_CIDRS": settings.fetch_allow_cidrs}),
        FetchLimits(max_bytes=settings.max_image_bytes),
    )
    pixels = PixelPool(settings.pixel_processes, Limits(
        max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes,
        max_frames=settings.max_animation_frames,
    ))
    server_key = load_server_key(settings.data_dir)
    connectors = registry([SalesforceConnector(SharinpixStore(pool, Sealer(server_key)), fetcher)])
    queue = QueueStore(pool)
    blob_store = blobs.from_settings(settings)
    # Files: concurrent journeys' blobs share one thread hop and one round of fsyncs. S3 puts are network
    # requests already made concurrently; batching them would only make each image wait for the slowest.
    written = CoalescedBlobWrites(blob_store) if isinstance(blob_store, FileBlobStore) else blob_store
    finishes = BatchedFinishes(queue)
    journey = Journey(
        # Concurrent finishes (dead links, small images) share one transaction; every write waits out an outage.
        queue=GatedQueue(finishes, settings.lease_seconds), pixels=pixels,
        blobs=RecordingBlobStore(written, CoalescedLedger(BlobLedgerStore(pool))),
        duplicates=GatedDuplicates(DuplicateFinder(CoalescedPhashIndex(PhashStore(pool))), settings.lease_seconds),
        urls=GuardedUrls(fetcher),
        connectors={name: TranslatedConnector(connector) for name, connector in connectors.items()},
    )
    runner = Runner(claims=queue, journey=journey, owner=_owner(), concurrency=settings.worker_concurrency,
                    lease_seconds=settings.lease_seconds, finishing=lambda: finishes.finishing)
    finishes.on_finishing = runner.wake  # an item that only waits for its finish frees its slot
    dispatcher = WebhookDispatcher(
        WebhookStore(pool), fetcher, server_key, runner.owner, settings.webhook_retry_schedule
    )
    listener = await listen(dsn, {QUEUE_CHANNEL: runner.wake, WEBHOOK_CHANNEL: dispatcher.wake})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker %s started (concurrency %d, %d pixel processes, up to %d attempts per item)",
             runner.owner, settings.worker_concurrency, settings.pixel_processes, domain_journey.MAX_ATTEMPTS)
    try:
        await asyncio.gather(
            runner.run(stop), dispatcher.run(stop), run_retention(stop, pool), run_blob_gc(stop, pool, blob_store),
        )
    finally:
        await listener.close()
        await pixels.close()
        await blob_store.close()
        await fetcher.close()
        await pool.close()
