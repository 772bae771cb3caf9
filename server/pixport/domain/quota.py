"""Admission: per-organisation images per rolling 24 hours, and backpressure on the queue
(unfinished items per organisation and overall). A batch over either limit is refused whole."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pixport.domain.errors import QuotaExceeded

WINDOW = timedelta(hours=24)
# How long a caller refused for backpressure is told to wait: workers drain the queue meanwhile.
BACKLOG_RETRY_SECONDS = 30


@dataclass(frozen=True)
class BacklogLimits:
    """Most unfinished (pending or running) items the queue accepts, per organisation and overall."""

    per_organization: int = 1_000_000
    overall: int = 10_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BacklogLimits:
        return cls(
            per_organization=int(environ.get("PIXPORT_MAX_PENDING_PER_ORG", "") or cls.per_organization),
            overall=int(environ.get("PIXPORT_MAX_PENDING", "") or cls.overall),
        )


class BacklogFull(QuotaExceeded):
    """Too much unfinished work queued: RESOURCE_EXHAUSTED / 429 with Retry-After."""


# Read once per process; the limits are deployment settings, like the other PIXPORT_ variables.
BACKLOG = BacklogLimits.from_env()

Admit = Callable[[int | None, Sequence[tuple[datetime, int]], datetime, tuple[int, int]], None]


def admission(requested: int, backlog: BacklogLimits | None = None) -> Admit:
    """The check the store runs under the organisation's lock for a request of `requested` images."""

    def admit(limit: int | None, window: Sequence[tuple[datetime, int]], now: datetime,
              pending: tuple[int, int]) -> None:
        check_backlog(backlog or BACKLOG, pending, requested)
        check_quota(limit, window, requested, now)

    return admit


def check_backlog(limits: BacklogLimits, pending: tuple[int, int], requested: int) -> None:
    """`pending`: unfinished items of the organisation and of everyone, before this request."""
    organization, everyone = pending
    if organization + requested > limits.per_organization:
        raise BacklogFull(
            f"Too many images waiting to be imported: your organisation has {organization} pending "
            f"(at most {limits.per_organization}) and this request adds {requested}. "
            "Please try again once some have finished.",
            limit=limits.per_organization, used=organization, requested=requested,
            retry_after_seconds=BACKLOG_RETRY_SECONDS,
        )
    if everyone + requested > limits.overall:
        raise BacklogFull(
            f"The service is busy: {everyone} images are pending (at most {limits.overall}) and this request "
            f"adds {requested}. Please try again later.",
            limit=limits.overall, used=everyone, requested=requested, retry_after_seconds=BACKLOG_RETRY_SECONDS,
        )


def check_quota(
    limit: int | None, window: Sequence[tuple[datetime, int]], requested: int, now: datetime
) -> None:
    """`window`: (accepted at, images) of the organisation's batches in the last 24 hours, oldest first."""
    if limit is None:
        return
    used = sum(count for _, count in window)
    if used + requested <= limit:
        return
    raise QuotaExceeded(
        f"Your plan does not allow you to upload more than {limit} per day. You already uploaded {used} "
        f"in the last 24 hours and are trying to upload {requested} more. Please try again later.",
        limit=limit, used=used, requested=requested, retry_after_seconds=_retry_after(limit, window, requested, now),
    )


def _retry_after(limit: int, window: Sequence[tuple[datetime, int]], requested: int, now: datetime) -> int:
    """Seconds until enough of the window has expired for this batch to fit (a day if it never can)."""
    if requested > limit:
        return int(WINDOW.total_seconds())
    must_expire = sum(count for _, count in window) + requested - limit
    expired = 0
    for accepted_at, count in window:
        expired += count
        if expired >= must_expire:
            return max(1, math.ceil((accepted_at + WINDOW - now).total_seconds()))
    return int(WINDOW.total_seconds())


class StreamSlots:
    """A bound on the live job streams an organisation holds open in one server process, so one
    tenant cannot exhaust its connections (PIXPORT_MAX_STREAMS_PER_ORG, default 100)."""

    def __init__(self, per_organization: int | None = None) -> None:
        self._limit = per_organization if per_organization is not None else int(
            os.environ.get("PIXPORT_MAX_STREAMS_PER_ORG", "") or 100)
        self._open: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, organization_id: str) -> Iterator[None]:
        held = self._open.get(organization_id, 0)
        if held >= self._limit:
            raise BacklogFull(
                f"Too many live streams: your organisation already has {held} open (at most {self._limit}). "
                "Close one, or poll the job's status instead.",
                limit=self._limit, used=held, requested=1, retry_after_seconds=5,
            )
        self._open[organization_id] = held + 1
        try:
            yield
        finally:
            remaining = self._open[organization_id] - 1
            if remaining:
                self._open[organization_id] = remaining
            else:
                del self._open[organization_id]
