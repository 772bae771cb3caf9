from __future__ import annotations

import random

from pixport.domain.retries import MAX_DELAY_SECONDS, retry_delay


def test_backoff_grows_with_jitter_between_half_and_all_of_it() -> None:
    rng = random.Random(7)
    for attempt, full in ((1, 2.0), (2, 4.0), (3, 8.0), (20, MAX_DELAY_SECONDS)):
        delays = [retry_delay(attempt, None, rng) for _ in range(200)]
        assert all(full / 2 <= delay <= full for delay in delays)
        assert len(set(delays)) > 100  # jittered, not one value


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(1)
    assert retry_delay(1, 30.0, rng) == 30.0
    assert 8.0 <= retry_delay(5, 2.0, rng) <= 32.0  # the backoff is longer than the origin asked
    assert retry_delay(1, 10 ** 9, rng) == 3600.0
