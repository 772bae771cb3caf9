from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pixport.domain.quota import BacklogFull, BacklogLimits, StreamSlots, admission, check_backlog

LIMITS = BacklogLimits(per_organization=100, overall=1000)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_batch_that_fits_is_admitted() -> None:
    check_backlog(LIMITS, (60, 900), 40)
    admission(40, LIMITS)(None, [], NOW, (60, 900))


def test_past_the_organisation_bound_the_batch_is_refused_whole_naming_the_pending_count() -> None:
    with pytest.raises(BacklogFull) as refused:
        check_backlog(LIMITS, (61, 100), 40)
    assert "has 61 pending" in refused.value.message and "(at most 100)" in refused.value.message
    assert refused.value.retry_after_seconds > 0


def test_past_the_global_bound_the_batch_is_refused() -> None:
    with pytest.raises(BacklogFull) as refused:
        admission(10, LIMITS)(None, [], NOW, (0, 995))
    assert "995 images are pending" in refused.value.message


def test_limits_come_from_the_environment() -> None:
    assert BacklogLimits.from_env({"PIXPORT_MAX_PENDING_PER_ORG": "5"}) == BacklogLimits(5, 10_000_000)
    assert BacklogLimits.from_env({}) == BacklogLimits(1_000_000, 10_000_000)


def test_live_streams_are_bounded_per_organisation() -> None:
    slots = StreamSlots(per_organization=2)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(BacklogFull, match="already has 2 open"), slots.hold("a"):
            pass
        with slots.hold("b"):  # another organisation is not affected
            pass
    with slots.hold("a"), slots.hold("a"):  # released again
        pass
