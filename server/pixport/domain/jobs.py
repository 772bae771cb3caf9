"""A job's life: when it is finished, in what state, and what its log and webhook say."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pixport.domain.records import JobState, Overview
from pixport.domain.states import job_state

CANCELLED_REASON = "job cancelled"

# Called with (images per day or None, [(accepted at, images)] of the last 24 hours, now); raises to refuse.
Admission = Callable[[int | None, list[tuple[datetime, int]], datetime, tuple[int, int]], None]


def is_done(overview: Overview) -> bool:
    """A job is finished once no item is left pending or running."""
    return overview.pending == 0


def final_state(overview: Overview, *, cancelled: bool = False) -> JobState:
    return job_state(overview, cancelled=cancelled)


def job_started_payload(overview: Overview) -> dict[str, Any]:
    return {"overview": overview.as_dict()}


def job_finished_payload(state: JobState, overview: Overview) -> dict[str, Any]:
    return {"state": state.value, "overview": overview.as_dict()}


def cancelled_item_payload(external_id: str, title: str) -> dict[str, Any]:
    return {"status": "cancelled", "reason": CANCELLED_REASON, "externalId": external_id, "title": title}


def webhook_body(job_id: str, state: JobState, overview: Overview, context: dict[str, Any] | None) -> dict[str, Any]:
    """The body POSTed to the job's webhook when it finishes."""
    return {"id": job_id, "state": state.value, "overview": overview.as_dict(), "context": context}
