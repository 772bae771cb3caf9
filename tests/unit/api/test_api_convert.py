"""Domain records → protobuf messages (what GetImportJob, WatchImportJob and GetImage return)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pixport.api import convert
from pixport.domain.records import (
    DuplicateRef,
    ImageRecord,
    ImageRef,
    ItemStatus,
    ItemView,
    JobEvent,
    JobState,
    JobView,
    Overview,
)
from pixport.domain.urls import PublicUrls
from pixport.v1 import import_job_pb2

URLS = PublicUrls("https://img.example.com")
SHA = "abcdef0123456789" + "0" * 48
V = "abcdef0123456789"
T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
Item = import_job_pb2.ImportItem
Job = import_job_pb2.ImportJob


def ref(renditions: tuple[str, ...] = ("fill100", "fit2000", "full", "large", "mini"),
        duplicate: DuplicateRef | None = None) -> ImageRef:
    return ImageRef(media_id="M1", width=640, height=480, mime_type="image/jpeg", sha256=SHA,
                    renditions=renditions, duplicate_of=duplicate)


def item(status: ItemStatus, reason: str | None = None, image: ImageRef | None = None) -> ItemView:
    return ItemView(status=status, reason=reason, external_id="ext-1", title="cat", image=image)


def job(state: JobState = JobState.STARTED, items: tuple[ItemView, ...] | None = None) -> JobView:
    return JobView(id="job1", organization_id="org", system_name="archive", state=state, started_at=T0,
                   finished_at=None, item_count=len(items or ()), last_sequence=1, items=items)


# --- items ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "wire"),
    [
        (ItemStatus.PENDING, Item.pending), (ItemStatus.RUNNING, Item.pending),
        (ItemStatus.SUCCESS, Item.success), (ItemStatus.SKIPPED, Item.skipped),
        (ItemStatus.FAILED, Item.failed), (ItemStatus.CANCELLED, Item.cancelled),
    ],
)
def test_item_statuses(status: ItemStatus, wire: int) -> None:
    message = convert.import_item(item(status), URLS)
    assert message.status == wire
    assert (message.external_id, message.title) == ("ext-1", "cat")


def test_reason_is_only_set_when_present() -> None:
    assert not convert.import_item(item(ItemStatus.SUCCESS), URLS).HasField("reason")
    failed = convert.import_item(item(ItemStatus.FAILED, "HTTP 404 Not Found from origin"), URLS)
    assert failed.HasField("reason")
    assert failed.reason == "HTTP 404 Not Found from origin"


def test_an_item_without_image_has_no_image_summary() -> None:
    assert not convert.import_item(item(ItemStatus.FAILED, "nope"), URLS).HasField("image")
    assert not convert.import_item(item(ItemStatus.PENDING), URLS).HasField("image")


def test_image_summary_of_a_successful_item() -> None:
    message = convert.import_item(item(ItemStatus.SUCCESS, image=ref()), URLS)
    assert message.HasField("image")
    summary = message.image
    assert summary.media_id == "M1"
    assert summary.original_url == f"https://img.example.com/api/v1/images/M1/original?v={V}"
    assert summary.url == f"https://img.example.com/api/v1/images/M1/full?v={V}"
    assert (summary.width, summary.height, summary.mime_type) == (640, 480, "image/jpeg")
    assert summary.image_service == "pixport"
    assert not summary.HasField("duplicate_of")


def test_skipped_item_keeps_reason_and_image() -> None:
    message = convert.import_item(item(ItemStatus.SKIPPED, "already exists", ref()), URLS)
    assert message.status == Item.skipped
    assert message.reason == "already exists"
    assert message.image.media_id == "M1"


@pytest.mark.parametrize(
    ("renditions", "shown"),
    [
        (("fill100", "fit2000", "full", "large", "mini"), "full"),
        (("fill100", "fit2000", "large", "mini"), "fit2000"),
        (("fill100", "large", "mini"), "original"),
        ((), "original"),
    ],
)
def test_display_url_prefers_full_then_fit2000_then_original(renditions: tuple[str, ...], shown: str) -> None:
    summary = convert.image_summary(ref(renditions), URLS)
    assert summary.url == f"https://img.example.com/api/v1/images/M1/{shown}?v={V}"


def test_duplicate_of_is_carried() -> None:
    summary = convert.image_summary(ref(duplicate=DuplicateRef("M0", 3)), URLS)
    assert summary.HasField("duplicate_of")
    assert (summary.duplicate_of.media_id, summary.duplicate_of.distance) == ("M0", 3)


# --- jobs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "wire", "finished"),
    [
        (JobState.STARTED, Job.started, False), (JobState.SUCCESS, Job.success, True),
        (JobState.FAILED, Job.failed, True), (JobState.CANCELLED, Job.cancelled, True),
    ],
)
def test_job_state_and_finished(state: JobState, wire: int, finished: bool) -> None:
    message = convert.import_job(job(state, ()), URLS)
    assert message.state == wire
    assert message.finished is finished
    assert message.id == "job1"
    assert message.started_at == "2024-05-01 12:00:00"  # seed 002's format, UTC, no fraction
    assert message.start_time.ToDatetime(tzinfo=UTC) == T0


def test_job_items_keep_their_order() -> None:
    items = (
        item(ItemStatus.SUCCESS, image=ref()),
        ItemView(ItemStatus.FAILED, "not an image: text/html", "ext-2", "dog", None),
        ItemView(ItemStatus.PENDING, None, "ext-3", "bird", None),
    )
    message = convert.import_job(job(JobState.STARTED, items), URLS)
    assert [(i.external_id, i.status) for i in message.images] == [
        ("ext-1", Item.success), ("ext-2", Item.failed), ("ext-3", Item.pending)
    ]
    assert [i.HasField("image") for i in message.images] == [True, False, False]
    assert [i.HasField("reason") for i in message.images] == [False, True, False]


def test_a_job_without_loaded_items_has_no_images() -> None:
    assert list(convert.import_job(job(JobState.SUCCESS, None), URLS).images) == []


def test_overview() -> None:
    message = convert.overview(Overview(total=6, success=1, skipped=1, failed=1, cancelled=1, pending=2))
    assert (message.total, message.success, message.skipped, message.failed, message.cancelled, message.pending) \
        == (6, 1, 1, 1, 1, 2)


# --- events --------------------------------------------------------------------------------------


def event(kind: str, payload: dict[str, Any], sequence: int = 2, snapshot: JobView | None = None) -> JobEvent:
    return JobEvent("job1", sequence, kind, payload, T0, snapshot=snapshot)


OVERVIEW = {"total": 2, "success": 1, "skipped": 0, "failed": 1, "cancelled": 0, "pending": 0}


def test_snapshot_event() -> None:
    message = convert.job_event(event("snapshot", {}, 5, job(JobState.STARTED, ())), URLS)
    assert message.WhichOneof("event") == "snapshot"
    assert (message.sequence, message.job_id) == (5, "job1")
    assert message.snapshot.id == "job1"
    assert message.snapshot.state == Job.started
    assert message.create_time.ToDatetime(tzinfo=UTC) == T0


def test_job_started_event() -> None:
    started = {**OVERVIEW, "success": 0, "failed": 0, "pending": 2}
    message = convert.job_event(event("job_started", {"overview": started}, 1), URLS)
    assert message.WhichOneof("event") == "job_started"
    assert (message.job_started.total, message.job_started.pending) == (2, 2)


def test_item_finished_event_with_image_and_duplicate() -> None:
    payload = {
        "status": "success", "externalId": "ext-1", "title": "cat",
        "image": {"mediaId": "M1", "width": 640, "height": 480, "mimeType": "image/jpeg", "sha256": SHA,
                  "renditions": ["fit2000", "mini"], "duplicateOf": {"mediaId": "M0", "distance": 4}},
    }
    message = convert.job_event(event("item_finished", payload), URLS)
    assert message.WhichOneof("event") == "item_finished"
    finished = message.item_finished
    assert finished.status == Item.success
    assert not finished.HasField("reason")
    assert finished.image.media_id == "M1"
    assert finished.image.url == f"https://img.example.com/api/v1/images/M1/fit2000?v={V}"
    assert (finished.image.duplicate_of.media_id, finished.image.duplicate_of.distance) == ("M0", 4)


def test_item_finished_event_with_null_duplicate() -> None:
    payload = {
        "status": "skipped", "reason": "already exists", "externalId": "ext-1", "title": "cat",
        "image": {"mediaId": "M1", "width": 1, "height": 1, "mimeType": "image/png", "sha256": SHA,
                  "renditions": [], "duplicateOf": None},
    }
    finished = convert.job_event(event("item_finished", payload), URLS).item_finished
    assert finished.status == Item.skipped
    assert finished.reason == "already exists"
    assert finished.image.url == f"https://img.example.com/api/v1/images/M1/original?v={V}"
    assert not finished.image.HasField("duplicate_of")


def test_item_finished_event_of_a_failure_has_no_image() -> None:
    payload = {"status": "failed", "reason": "HTTP 404 Not Found from origin", "externalId": "e", "title": "t"}
    finished = convert.job_event(event("item_finished", payload), URLS).item_finished
    assert finished.status == Item.failed
    assert finished.reason == "HTTP 404 Not Found from origin"
    assert not finished.HasField("image")


def test_job_finished_event() -> None:
    message = convert.job_event(event("job_finished", {"state": "success", "overview": OVERVIEW}, 4), URLS)
    assert message.WhichOneof("event") == "job_finished"
    assert message.job_finished.state == Job.success
    assert (message.job_finished.overview.total, message.job_finished.overview.failed) == (2, 1)


@pytest.mark.parametrize(("state", "wire"), [("failed", Job.failed), ("cancelled", Job.cancelled)])
def test_job_finished_event_states(state: str, wire: int) -> None:
    message = convert.job_event(event("job_finished", {"state": state, "overview": OVERVIEW}), URLS)
    assert message.job_finished.state == wire


# --- images ---------------------------------------------------------------------------------------


def record(analysis: dict[str, Any]) -> ImageRecord:
    return ImageRecord(
        media_id="M1", organization_id="org", system_name="archive", external_id="ext-1", title="cat",
        metadata={"caption": "bar"}, sha256=SHA, format="jpeg", mime_type="image/jpeg", width=640, height=480,
        byte_size=12345, analysis=analysis, created_at=T0, updated_at=T0,
    )


def test_full_image_record() -> None:
    analysis = {
        "phash": "8f373714acfcf4d0", "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "frame_count": 3,
        "has_alpha": True, "is_grayscale": False, "exif": {"Make": "Canon"},
        "taken_at": "2023-07-01T10:00:00+00:00", "gps": {"lat": 48.85, "lng": -2.35},
        "colors": [{"hex": "#EBF1F9", "percent": 13.2}],
        "renditions": {"mini": {}, "full": {}},
        "duplicate_of": {"media_id": "M0", "distance": 2},
    }
    message = convert.image(record(analysis), URLS)
    assert (message.media_id, message.width, message.height, message.byte_size) == ("M1", 640, 480, 12345)
    assert (message.phash, message.frame_count, message.has_alpha) == ("8f373714acfcf4d0", 3, True)
    assert dict(message.renditions) == {
        "original": f"https://img.example.com/api/v1/images/M1/original?v={V}",
        "mini": f"https://img.example.com/api/v1/images/M1/mini?v={V}",
        "full": f"https://img.example.com/api/v1/images/M1/full?v={V}",
    }
    assert message.taken_at.ToDatetime(tzinfo=UTC) == datetime(2023, 7, 1, 10, tzinfo=UTC)
    assert (message.gps.lat, message.gps.lng) == (48.85, -2.35)
    assert [(c.hex, c.percent) for c in message.colors] == [("#EBF1F9", 13.2)]
    assert message.exif["Make"] == "Canon"
    assert message.metadata["caption"] == "bar"
    assert (message.duplicate_of.media_id, message.duplicate_of.distance) == ("M0", 2)


def test_sparse_image_record() -> None:
    message = convert.image(record({"phash": None, "placeholder": None, "gps": None, "taken_at": None}), URLS)
    assert message.phash == ""
    assert message.frame_count == 1
    assert not message.HasField("gps")
    assert not message.HasField("taken_at")
    assert not message.HasField("duplicate_of")
    assert dict(message.renditions) == {"original": f"https://img.example.com/api/v1/images/M1/original?v={V}"}


def test_job_times_are_utc_in_the_seed_format_and_finish_is_absent_while_running() -> None:
    from datetime import timedelta, timezone

    paris = timezone(timedelta(hours=2))
    running = JobView(id="j", organization_id="o", system_name="s", state=JobState.STARTED,
                      started_at=datetime(2020, 1, 1, 15, 45, 12, 999999, tzinfo=paris), finished_at=None,
                      item_count=1, last_sequence=1)
    message = convert.import_job(running, URLS)
    assert message.started_at == "2020-01-01 13:45:12"
    assert not message.HasField("finished_at") and not message.HasField("finish_time")
    assert not message.HasField("overview")


def test_finished_job_carries_finish_time_and_overview() -> None:
    done = JobView(id="j", organization_id="o", system_name="s", state=JobState.SUCCESS, started_at=T0,
                   finished_at=datetime(2024, 5, 1, 12, 0, 3, tzinfo=UTC), item_count=3, last_sequence=5,
                   overview=Overview(total=3, success=2, failed=1))
    message = convert.import_job(done, URLS)
    assert message.finished_at == "2024-05-01 12:00:03"
    assert message.finish_time.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 1, 12, 0, 3, tzinfo=UTC)
    assert (message.overview.total, message.overview.success, message.overview.failed) == (3, 2, 1)
