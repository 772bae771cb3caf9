"""The rules that decide a job's state from its items."""

from __future__ import annotations

from pixport.domain.records import JobState, Overview


def job_state(overview: Overview, *, cancelled: bool = False) -> JobState:
    if cancelled:
        return JobState.CANCELLED
    if overview.pending > 0:
        return JobState.STARTED
    if overview.success + overview.skipped > 0:
        return JobState.SUCCESS
    return JobState.FAILED
