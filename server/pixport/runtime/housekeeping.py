"""Background housekeeping run by worker processes: retention of finished jobs' detail and blob
collection. Each loop does small rounds until a round finds nothing, then sleeps; any number of
workers may run them at once (rows are taken with SKIP LOCKED or deleted in small idempotent batches)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

import asyncpg

from pixport.blobs.base import BlobStoreUnavailable
from pixport.domain.blob_records import BlobStore, collect_blobs
from pixport.store.housekeeping import BlobLedgerStore, RetentionStore

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_BLOB_GC_GRACE_SECONDS = 3600.0
RETENTION_INTERVAL_SECONDS = 300.0
BLOB_GC_INTERVAL_SECONDS = 300.0
TEMPORARY_FILE_AGE_SECONDS = 3600.0
_TRANSIENT = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
# An unreachable or missing bucket is an outage like the database's: the next round tries again
# (raised out of the worker's gather, it would take the whole worker down, in a crash loop).
_BLOB_TRANSIENT = (*_TRANSIENT, BlobStoreUnavailable)


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def retention_days(environ: Mapping[str, str] = os.environ) -> float:
    """PIXPORT_RETENTION_DAYS (default 30)."""
    return _positive(environ, "PIXPORT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)


def blob_gc_grace_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """PIXPORT_BLOB_GC_GRACE_SECONDS (default 3600)."""
    return _positive(environ, "PIXPORT_BLOB_GC_GRACE_SECONDS", DEFAULT_BLOB_GC_GRACE_SECONDS)


def blob_gc_interval_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """PIXPORT_BLOB_GC_INTERVAL_SECONDS (default 300): pause between collection rounds."""
    return _positive(environ, "PIXPORT_BLOB_GC_INTERVAL_SECONDS", BLOB_GC_INTERVAL_SECONDS)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_retention(
    stop: asyncio.Event, pool: asyncpg.Pool, *, days: float | None = None,
    interval_seconds: float = RETENTION_INTERVAL_SECONDS,
) -> None:
    """Until `stop`: prune items, events and settled deliveries of jobs finished `days` ago."""
    store = RetentionStore(pool)
    days = retention_days() if days is None else days
    while not stop.is_set():
        try:
            busy = True
            while busy and not stop.is_set():  # rounds until one finds nothing left to prune
                busy = await store.prune(days) > 0
        except _TRANSIENT as error:
            log.warning("retention round failed: %s", error)
        await _pause(stop, interval_seconds)


async def run_blob_gc(
    stop: asyncio.Event, pool: asyncpg.Pool, blobs: BlobStore, *, grace_seconds: float | None = None,
    interval_seconds: float | None = None, batch: int = 100,
) -> None:
    """Until `stop`: delete blobs no image references, written more than `grace_seconds` ago, and
    temporary files of interrupted writes. `blobs` is the raw store (not the recording wrapper)."""
    ledger = BlobLedgerStore(pool)
    grace = blob_gc_grace_seconds() if grace_seconds is None else grace_seconds
    interval = blob_gc_interval_seconds() if interval_seconds is None else interval_seconds
    while not stop.is_set():
        try:
            full = True
            while full and not stop.is_set():  # rounds until one finds fewer than a batch
                full = await collect_blobs(ledger, blobs, grace, batch) == batch
            await blobs.sweep_temporary(max(grace, TEMPORARY_FILE_AGE_SECONDS))
        except _BLOB_TRANSIENT as error:
            log.warning("blob collection round failed: %s", error)
        await _pause(stop, interval)
