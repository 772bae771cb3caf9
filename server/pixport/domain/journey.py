"""One image's journey, top to bottom: its bytes → its pixels → its blobs → near-duplicates → its final status.

Everything that decides what happens to ONE claimed item lives here: where its bytes come from (a URL or a
connector from the registry the runner passes in), what each failure class means (retry later, fail now,
hand the item back untouched), and the retry policy. The runner (runtime/runner.py) only claims items, keeps
their leases alive and calls `Journey.run()` for each; it never decides an outcome.

The journey talks to the world only through the Protocols declared below, so its unit tests run it with
fakes; it imports nothing from the store, the API, the runtime or the HTTP client.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pixport.domain.queue import ClaimedItem, Outcome, StoredImage
from pixport.domain.records import ItemStatus
from pixport.domain.stored import blobs_of, image_record
from pixport.imaging.pool import PixelPoolClosed, PixelPoolError
from pixport.imaging.types import Analysis, ImageRejected
from pixport.observability.metrics import (
    FETCH_DURATION,
    ITEM_RETRIES,
    ITEMS_FINISHED,
    PIXELS_DURATION,
    STORE_DURATION,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # the README promises: given up with a reason after 3 attempts
RETRY_DELAYS = (2.0, 10.0)  # seconds before attempts 2 and 3
URL_SOURCE = "url"  # the item's `connector` when its bytes come from its URL
POOL_UNAVAILABLE = "image processing is unavailable"
INTERNAL_ERROR = "internal error while processing the image"


# --- The ports -------------------------------------------------------------------------------------------


class Unfetchable(Exception):
    """The bytes could not be had; `reason` is a sentence a person can act on.

    The runner's adapters translate the HTTP client's and the connectors' errors into this one.
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable  # True for failures that may pass: timeouts, connection errors, 5xx, 429


class UrlSource(Protocol):
    async def fetch(self, url: str, headers: Mapping[str, str] | None) -> bytes:
        """The body behind `url` (caller's headers added); raises Unfetchable."""
        ...


class Connector(Protocol):
    async def fetch(self, organization_id: str, ref: str) -> bytes:
        """The bytes the external system holds under `ref`; raises Unfetchable."""
        ...


class Pixels(Protocol):
    async def analyse(self, data: bytes) -> Analysis:
        """Raises ImageRejected (the image's fault), PixelPoolClosed or PixelPoolError (the pool's)."""
        ...


class Blobs(Protocol):
    """The part of blobs.BlobStore the journey uses (COMMON contract 3): content-addressed, whole objects."""

    async def put_all(self, blobs: Sequence[bytes]) -> list[str]: ...


class Duplicates(Protocol):
    async def annotate(
        self, organization_id: str, system_name: str, external_id: str, stored: StoredImage
    ) -> StoredImage:
        """`stored`, with `duplicate_of` in its analysis when an earlier image of the organisation is close."""
        ...


class Queue(Protocol):
    """The queue's calls that end or hand back a claim (COMMON contract 5). None/False: the lease was lost."""

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool: ...

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None: ...

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None: ...


# --- The retry policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    delay_seconds: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


def after_failure(attempts: int, reason: str, *, retryable: bool) -> Retry | GiveUp:
    """What to do after attempt number `attempts` (1-based) failed for `reason`."""
    if retryable and attempts < MAX_ATTEMPTS:
        return Retry(RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)], reason)
    if retryable and attempts > 1:
        return GiveUp(f"{reason} (gave up after {attempts} attempts)")
    return GiveUp(reason)


def interrupted_too_often(attempts: int) -> str | None:
    """The reason to give up on an item claimed again after its workers kept dying with it, else None."""
    if attempts > MAX_ATTEMPTS:
        return f"processing was interrupted {MAX_ATTEMPTS} times; giving up"
    return None


# --- The journey -----------------------------------------------------------------------------------------


class Ending(enum.StrEnum):
    FINISHED = "finished"  # a final status was recorded (success, skipped or failed)
    RETRYING = "retrying"  # back in the queue for a later attempt, the attempt counted
    HANDED_BACK = "handed_back"  # back in the queue at once, the attempt refunded (not the item's fault)
    LEASE_LOST = "lease_lost"  # someone else holds the item now (lease expired, job cancelled): nothing recorded


@dataclass
class Timings:
    fetch_ms: float | None = None
    pixels_ms: float | None = None
    store_ms: float | None = None


@dataclass(frozen=True)
class Result:
    ending: Ending
    status: ItemStatus | None = None  # with FINISHED
    reason: str | None = None
    timings: Timings = field(default_factory=Timings)


class _Failed(Exception):
    """Internal: this attempt failed for `reason`; after_failure() decides what follows."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Journey:
    def __init__(
        self, *, queue: Queue, pixels: Pixels, blobs: Blobs, duplicates: Duplicates, urls: UrlSource,
        connectors: Mapping[str, Connector],
    ) -> None:
        self._queue = queue
        self._pixels = pixels
        self._blobs = blobs
        self._duplicates = duplicates
        self._urls = urls
        self._connectors = connectors

    async def run(self, item: ClaimedItem) -> Result:
        """Take one claimed item to a final status, a retry or a hand-back. Raises only if the queue does."""
        timings = Timings()
        given_up = interrupted_too_often(item.attempts)
        if given_up is not None:
            return await self._fail(item, given_up, timings)
        try:
            stored = await self._import(item, timings)
        except ImageRejected as rejected:
            return await self._fail(item, rejected.reason, timings)
        except PixelPoolClosed:
            return await self.hand_back(item)  # the worker is stopping: not this item's attempt
        except _Failed as failed:
            return await self._after(item, after_failure(item.attempts, failed.reason, retryable=failed.retryable),
                                     timings)
        except Exception:
            log.exception("unexpected error processing item %s of job %s", item.id, item.job_id,
                          extra=_context(item, timings))
            return await self._after(item, after_failure(item.attempts, INTERNAL_ERROR, retryable=True), timings)
        outcome = await self._queue.finish_imported(item, item.lease_owner, stored)
        return self._finished(item, outcome, timings)

    async def hand_back(self, item: ClaimedItem) -> Result:
        """Give the item back to the queue at once, the attempt refunded (shutdown, a closing pixel pool)."""
        returned = await self._queue.requeue(item, item.lease_owner, 0, None, refund=True)
        log.info("item handed back", extra=_context(item, Timings()))
        return Result(Ending.HANDED_BACK if returned else Ending.LEASE_LOST)

    async def _import(self, item: ClaimedItem, timings: Timings) -> StoredImage:
        # An item that fails before it has bytes never reaches a pixel process or the blob store.
        data = await self._fetch(item, timings)
        started = time.perf_counter()
        try:
            analysis = await self._pixels.analyse(data)
        except PixelPoolClosed:
            raise
        except PixelPoolError:
            # The pool keeps failing, not the image: count the attempt, so an item is not handed back forever.
            raise _Failed(POOL_UNAVAILABLE, retryable=True) from None
        finally:
            timings.pixels_ms = _ms_since(started)
            PIXELS_DURATION.observe(timings.pixels_ms / 1000)
        del data  # the analysis holds the original; don't keep a second reference while storing
        started = time.perf_counter()
        keys = await self._blobs.put_all(blobs_of(analysis))
        timings.store_ms = _ms_since(started)
        STORE_DURATION.observe(timings.store_ms / 1000)
        stored = image_record(analysis, keys)
        return await self._duplicates.annotate(item.organization_id, item.system_name, item.external_id, stored)

    async def _fetch(self, item: ClaimedItem, timings: Timings) -> bytes:
        started = time.perf_counter()
        outcome = "failed"
        try:
            data = await self._bytes_of(item)
            outcome = "ok"
            return data
        except Unfetchable as error:
            raise _Failed(error.reason, retryable=error.retryable) from None
        finally:
            timings.fetch_ms = _ms_since(started)
            FETCH_DURATION.labels(outcome=outcome).observe(timings.fetch_ms / 1000)

    async def _bytes_of(self, item: ClaimedItem) -> bytes:
        if item.connector == URL_SOURCE:
            return await self._urls.fetch(item.url, item.fetch_headers)
        connector = self._connectors.get(item.connector)
        if connector is None or item.connector_ref is None:
            raise Unfetchable(f"no connector {item.connector!r} for this image")
        return await connector.fetch(item.organization_id, item.connector_ref)

    async def _after(self, item: ClaimedItem, step: Retry | GiveUp, timings: Timings) -> Result:
        if isinstance(step, GiveUp):
            return await self._fail(item, step.reason, timings)
        if not await self._queue.requeue(item, item.lease_owner, step.delay_seconds, step.reason):
            return self._lost(item, timings)
        ITEM_RETRIES.inc()
        log.info("item will be retried in %g s: %s", step.delay_seconds, step.reason, extra=_context(item, timings))
        return Result(Ending.RETRYING, reason=step.reason, timings=timings)

    async def _fail(self, item: ClaimedItem, reason: str, timings: Timings) -> Result:
        return self._finished(item, await self._queue.finish_failed(item, item.lease_owner, reason), timings)

    def _finished(self, item: ClaimedItem, outcome: Outcome | None, timings: Timings) -> Result:
        if outcome is None:
            return self._lost(item, timings)
        ITEMS_FINISHED.labels(status=outcome.status.value).inc()
        log.info("item %s%s", outcome.status.value, f": {outcome.reason}" if outcome.reason else "",
                 extra=_context(item, timings))
        return Result(Ending.FINISHED, outcome.status, outcome.reason, timings)

    @staticmethod
    def _lost(item: ClaimedItem, timings: Timings) -> Result:
        log.info("item's lease was lost; its new holder decides", extra=_context(item, timings))
        return Result(Ending.LEASE_LOST, timings=timings)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _context(item: ClaimedItem, timings: Timings) -> dict[str, object]:
    return {
        "job_id": item.job_id, "organization_id": item.organization_id, "item": item.id,
        "fetch_ms": timings.fetch_ms, "pixels_ms": timings.pixels_ms, "store_ms": timings.store_ms,
    }
