"""The worker loop: claim → fetch → read pixels → store blobs → record the outcome.

Any number of worker processes, on any number of machines, share one database: items are
claimed with FOR UPDATE SKIP LOCKED under a lease, and an expired lease is claimed again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid

import asyncpg

from pixport.blobs import FileBlobStore
from pixport.config import Settings
from pixport.connectors import Connector
from pixport.connectors.salesforce import SalesforceConnector
from pixport.dispatcher import WEBHOOK_CHANNEL, WebhookDispatcher
from pixport.domain.retries import retry_delay
from pixport.fetch import EgressPolicy, Fetcher, FetchError, FetchLimits
from pixport.imaging import ImageRejected, Limits, PixelPool
from pixport.imaging.pool import PixelPoolError
from pixport.ingest import stored_image
from pixport.keys import load_server_key
from pixport.sealing import Sealer
from pixport.store.db import create_pool
from pixport.store.duplicates import DuplicateFinder
from pixport.store.notifications import listen
from pixport.store.queue import ClaimedItem, QueueStore
from pixport.store.sharinpix import SharinpixStore
from pixport.store.webhooks import WebhookStore

log = logging.getLogger(__name__)
QUEUE_CHANNEL = "pixport_queue"
MAX_ATTEMPTS = 3
RETRY_DELAYS = (2.0, 10.0)  # before attempts 2 and 3
# Wake-ups come from NOTIFY; this sweep only catches delayed retries and expired leases.
SWEEP_SECONDS = 2.0


class Worker:
    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, fetcher: Fetcher, pixels: PixelPool, server_key: bytes
    ) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._settings = settings
        self._queue = QueueStore(pool)
        self._duplicates = DuplicateFinder(pool)
        self._fetcher = fetcher
        self._pixels = pixels
        self._blobs = FileBlobStore(settings.blob_dir)
        self._inflight: dict[asyncio.Task[None], ClaimedItem] = {}
        connectors: list[Connector] = [SalesforceConnector(SharinpixStore(pool, Sealer(server_key)), fetcher)]
        self._connectors = {connector.name: connector for connector in connectors}
        self._wake = asyncio.Event()
        self._claims = 0

    def wake(self, *_args: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        capacity = max(1, self._settings.worker_concurrency)
        heartbeat = asyncio.create_task(self._heartbeat(stop), name="lease-heartbeat")
        try:
            while not stop.is_set():
                free = capacity - len(self._inflight)
                try:
                    claimed = await self._claim(free) if free > 0 else []
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    # The database is away (restart, failover): keep the process, try again shortly.
                    log.warning("claiming items failed: %s; retrying", error)
                    claimed = []
                    await asyncio.sleep(SWEEP_SECONDS)
                for item in claimed:
                    task = asyncio.create_task(self._process(item), name=f"item-{item.id}")
                    self._inflight[task] = item
                    task.add_done_callback(self._done)
                if len(claimed) < free or free <= 0:  # queue drained, or no capacity: wait for news
                    await self._wait(stop)
            await self._release_inflight()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _claim(self, limit: int) -> list[ClaimedItem]:
        # A fresh token per claim: if this process ever reclaims its own expired item, the older
        # task's result is refused instead of racing the new one.
        self._claims += 1
        return await self._queue.claim(f"{self.owner}:{self._claims}", self._settings.lease_seconds, limit)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Extend the leases of items still in progress (waiting for a pixel process, a slow origin)."""
        interval = max(self._settings.lease_seconds / 3, 0.05)
        while not stop.is_set():
            await asyncio.sleep(interval)
            try:
                await self._queue.extend_leases(list(self._inflight.values()), self._settings.lease_seconds)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("extending leases failed: %s", error)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until a NOTIFY, a finished item, a stop, or the sweep interval."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=SWEEP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wake.clear()
            for waiter in waiters:
                waiter.cancel()

    async def _release_inflight(self) -> None:
        """On shutdown, hand unfinished items straight back to the queue (no waiting for leases)."""
        if not self._inflight:
            return
        _done, pending = await asyncio.wait(list(self._inflight), timeout=5)
        for task in pending:
            item = self._inflight.get(task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if item is not None:
                await self._queue.requeue(item, item.lease_owner, 0, None, refund=True)

    async def _process(self, item: ClaimedItem) -> None:
        try:
            if item.attempts > MAX_ATTEMPTS:
                await self._queue.finish_failed(
                    item, item.lease_owner, f"processing was interrupted {MAX_ATTEMPTS} times; giving up"
                )
                return
            analysis = await self._pixels.analyse(await self._bytes_of(item))
            stored = await asyncio.to_thread(stored_image, analysis, self._blobs)
            stored = await self._duplicates.annotate(item.organization_id, item.system_name,
                                                     item.external_id, stored)
            await self._queue.finish_imported(item, item.lease_owner, stored)
        except FetchError as error:
            await self._retry_or_fail(item, error.reason, retryable=error.retryable,
                                      retry_after=error.retry_after_seconds)
        except ImageRejected as error:
            await self._queue.finish_failed(item, item.lease_owner, error.reason)
        except PixelPoolError:
            # The pool itself is closing or broken (not this image's fault): hand the item back.
            await self._queue.requeue(item, item.lease_owner, RETRY_DELAYS[0], None, refund=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error processing item %s of job %s", item.id, item.job_id)
            await self._retry_or_fail(item, "internal error while processing the image", retryable=True)

    async def _bytes_of(self, item: ClaimedItem) -> bytes:
        if item.connector == "url":
            return (await self._fetcher.fetch(item.url, item.fetch_headers)).data
        connector = self._connectors.get(item.connector)
        if connector is None or item.connector_ref is None:
            raise FetchError(f"no connector {item.connector!r} for this image")
        return await connector.fetch(item.organization_id, item.connector_ref)

    async def _retry_or_fail(
        self, item: ClaimedItem, reason: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        if retryable and item.attempts < MAX_ATTEMPTS:
            delay = retry_delay(item.attempts, retry_after)
            await self._queue.requeue(item, item.lease_owner, delay, reason)
            return
        if retryable and item.attempts > 1:
            reason = f"{reason} (gave up after {item.attempts} attempts)"
        await self._queue.finish_failed(item, item.lease_owner, reason)


async def run_worker(settings: Settings, dsn: str) -> None:
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
    worker = Worker(settings, pool, fetcher, pixels, server_key)
    dispatcher = WebhookDispatcher(
        WebhookStore(pool), fetcher, server_key, worker.owner, settings.webhook_retry_schedule
    )
    listener = await listen(dsn, {QUEUE_CHANNEL: worker.wake, WEBHOOK_CHANNEL: dispatcher.wake})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker %s started (concurrency %d)", worker.owner, settings.worker_concurrency)
    try:
        await asyncio.gather(worker.run(stop), dispatcher.run(stop))
    finally:
        await listener.close()
        await pixels.close()
        await fetcher.close()
        await pool.close()
