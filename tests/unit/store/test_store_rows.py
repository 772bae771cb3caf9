"""The store's pure parts: rows → records, the item_finished payload, the named SQL blocks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pixport.store
import pytest
from pixport.domain.queue import ClaimedItem, Outcome, item_finished_payload
from pixport.domain.records import DuplicateRef, ImageRef, ItemStatus
from pixport.store.jobs import _item_view, image_ref
from pixport.store.queries import QUERIES

SHA = "ab" * 32
STORE = Path(pixport.store.__file__).parent


def row(status: str, reason: str | None = None, *, media_id: str | None = "M1",
        analysis: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "job_id": "job1", "position": 0, "status": status, "reason": reason, "external_id": "ext", "title": "t",
        "media_id": media_id, "width": 10, "height": 20, "mime_type": "image/png", "sha256": SHA,
        "analysis": analysis if analysis is not None else {"renditions": {"mini": {}, "full": {}, "fill100": {}}},
        # The item's frozen summary, as finish_item stores it.
        "image_summary": {"mediaId": media_id, "width": 10, "height": 20, "mimeType": "image/png", "sha256": SHA,
                          "renditions": ["fill100", "full", "mini"], "duplicateOf": None} if media_id else None,
    }


def test_image_ref_reads_renditions_sorted_and_duplicate() -> None:
    analysis = {
        "renditions": {"mini": {}, "full": {}, "fill100": {}}, "duplicate_of": {"media_id": "M0", "distance": 5},
    }
    assert image_ref(row("success", analysis=analysis)) == ImageRef(
        media_id="M1", width=10, height=20, mime_type="image/png", sha256=SHA,
        renditions=("fill100", "full", "mini"), duplicate_of=DuplicateRef("M0", 5),
    )


def test_image_ref_without_media_or_analysis() -> None:
    assert image_ref(row("success", media_id=None)) is None
    bare = row("success")
    bare["analysis"] = None
    reference = image_ref(bare)
    assert reference is not None
    assert reference.renditions == ()
    assert reference.duplicate_of is None


@pytest.mark.parametrize(
    ("status", "shown", "has_image"),
    [
        ("success", ItemStatus.SUCCESS, True),
        ("skipped", ItemStatus.SKIPPED, True),
        ("failed", ItemStatus.FAILED, False),
        ("cancelled", ItemStatus.CANCELLED, False),
        ("pending", ItemStatus.PENDING, False),
        ("running", ItemStatus.PENDING, False),
    ],
)
def test_item_view_shows_an_image_only_for_success_and_skipped(
    status: str, shown: ItemStatus, has_image: bool
) -> None:
    view = _item_view(row(status, "why"))  # type: ignore[arg-type]
    assert view.status is shown
    assert (view.image is not None) is has_image


@pytest.mark.parametrize(("status", "reason"), [("pending", None), ("running", None), ("failed", "why"),
                                                ("skipped", "why"), ("cancelled", "why"), ("success", "why")])
def test_item_view_hides_the_reason_of_unfinished_items(status: str, reason: str | None) -> None:
    # A requeued item keeps its last transient error in `reason` while pending: callers must not see it.
    assert _item_view(row(status, "why")).reason == reason  # type: ignore[arg-type]


def claimed() -> ClaimedItem:
    return ClaimedItem(id=1, job_id="job1", organization_id="org", position=0, external_id="ext", url="https://x/",
                       title="t", metadata={}, media_type="", attempts=1, system_name="archive")


def test_event_payload_of_a_failure() -> None:
    assert item_finished_payload(claimed(), Outcome(ItemStatus.FAILED, "timeout", None)) == {
        "status": "failed", "externalId": "ext", "title": "t", "reason": "timeout",
    }


def test_event_payload_of_an_import() -> None:
    image = ImageRef("M1", 10, 20, "image/png", SHA, ("full", "mini"), DuplicateRef("M0", 1))
    payload = item_finished_payload(claimed(), Outcome(ItemStatus.SUCCESS, None, image))
    assert "reason" not in payload
    assert payload["image"] == {
        "mediaId": "M1", "width": 10, "height": 20, "mimeType": "image/png", "sha256": SHA,
        "renditions": ["full", "mini"], "duplicateOf": {"mediaId": "M0", "distance": 1},
    }
    no_duplicate = item_finished_payload(claimed(), Outcome(ItemStatus.SKIPPED, "already exists",
                                                     ImageRef("M1", 1, 1, "image/png", SHA)))
    assert no_duplicate["image"]["duplicateOf"] is None
    assert no_duplicate["reason"] == "already exists"


def test_every_query_the_store_names_exists() -> None:
    used: set[str] = set()
    for source in STORE.glob("*.py"):
        used |= set(re.findall(r'QUERIES\["([a-z_]+)"\]', source.read_text(encoding="utf-8")))
    assert used, "found no QUERIES[...] uses"
    assert sorted(used - set(QUERIES)) == []


def test_query_blocks_are_not_empty() -> None:
    assert all(body.strip() for body in QUERIES.values())
    assert "SKIP LOCKED" in QUERIES["claim_items"] and "FOR UPDATE" in QUERIES["claim_items"]


def test_an_item_waiting_for_a_retry_shows_its_attempts_and_last_error() -> None:
    error = "HTTP 503 Service Unavailable from origin"
    waiting = _item_view({**row("pending", error), "attempts": 2})  # type: ignore[arg-type]
    assert (waiting.reason, waiting.attempts, waiting.last_error) == (None, 2, error)
    final = _item_view({**row("failed", "timeout"), "attempts": 3})  # type: ignore[arg-type]
    assert (final.reason, final.last_error) == ("timeout", None)
