"""Job state from item counts: Overview.from_counts and job_state."""

from __future__ import annotations

import pytest
from pixport.domain.records import ItemStatus, JobState, Overview
from pixport.domain.states import job_state


def test_overview_from_counts_reads_every_status() -> None:
    counts = {"success": 3, "skipped": 2, "failed": 4, "cancelled": 1, "pending": 5, "running": 6}
    overview = Overview.from_counts(counts)
    assert overview == Overview(total=21, success=3, skipped=2, failed=4, cancelled=1, pending=11)


def test_running_items_count_as_pending() -> None:
    assert Overview.from_counts({"running": 2}) == Overview(total=2, pending=2)


def test_missing_statuses_count_zero() -> None:
    assert Overview.from_counts({}) == Overview()
    assert Overview.from_counts({"failed": 1}) == Overview(total=1, failed=1)


def test_overview_as_dict_has_every_count() -> None:
    overview = Overview(total=6, success=1, skipped=1, failed=1, cancelled=1, pending=2)
    assert overview.as_dict() == {
        "total": 6, "success": 1, "skipped": 1, "failed": 1, "cancelled": 1, "pending": 2,
    }


@pytest.mark.parametrize(
    ("overview", "cancelled", "state"),
    [
        (Overview(total=2, pending=1, success=1), False, JobState.STARTED),
        (Overview(total=1, pending=1), False, JobState.STARTED),
        (Overview(total=2, success=1, failed=1), False, JobState.SUCCESS),
        (Overview(total=1, skipped=1), False, JobState.SUCCESS),
        (Overview(total=3, skipped=1, failed=1, cancelled=1), False, JobState.SUCCESS),
        (Overview(total=2, failed=2), False, JobState.FAILED),
        (Overview(total=2, failed=1, cancelled=1), False, JobState.FAILED),
        (Overview(), False, JobState.FAILED),
        (Overview(total=2, pending=2), True, JobState.CANCELLED),
        (Overview(total=2, success=2), True, JobState.CANCELLED),
        (Overview(total=2, cancelled=2), True, JobState.CANCELLED),
    ],
)
def test_job_state(overview: Overview, cancelled: bool, state: JobState) -> None:
    assert job_state(overview, cancelled=cancelled) is state


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (ItemStatus.PENDING, False), (ItemStatus.RUNNING, False), (ItemStatus.SUCCESS, True),
        (ItemStatus.SKIPPED, True), (ItemStatus.FAILED, True), (ItemStatus.CANCELLED, True),
    ],
)
def test_item_status_final(status: ItemStatus, final: bool) -> None:
    assert status.final is final
