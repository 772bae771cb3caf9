"""Per-organisation images per rolling 24 hours. A batch over the limit is refused whole."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pixport.domain.errors import QuotaExceeded

WINDOW = timedelta(hours=24)


def admission(requested: int) -> Callable[[int | None, Sequence[tuple[datetime, int]], datetime], None]:
    """The check the store runs under the organisation's lock for a request of `requested` images."""

    def admit(limit: int | None, window: Sequence[tuple[datetime, int]], now: datetime) -> None:
        check_quota(limit, window, requested, now)

    return admit


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
