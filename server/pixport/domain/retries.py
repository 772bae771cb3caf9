"""When a failed item is tried again: exponential backoff with full jitter, and never sooner
than the origin asked for with Retry-After."""

from __future__ import annotations

import random

BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 300.0
# An origin cannot park an item for longer than this with Retry-After.
MAX_RETRY_AFTER_SECONDS = 3600.0


def retry_delay(attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first) before the next.

    Backoff doubles per attempt (2 s, 4 s, 8 s ... capped at 5 min) and is jittered to between
    half and all of it, so items failed together by one outage do not come back together. An
    origin's Retry-After is a floor: waiting less would only be refused again."""
    chosen = rng or random
    backoff = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** max(0, attempt - 1))
    delay = backoff * chosen.uniform(0.5, 1.0)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return float(delay)
