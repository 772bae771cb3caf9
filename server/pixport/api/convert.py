"""Domain records → protobuf messages."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from pixport.domain.errors import FieldViolation, InvalidArgument
from pixport.domain.records import (
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
from pixport.v1 import image_pb2, import_job_pb2

IMAGE_SERVICE = "pixport"
SEED_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

JOB_STATES = {
    JobState.STARTED: import_job_pb2.ImportJob.started,
    JobState.SUCCESS: import_job_pb2.ImportJob.success,
    JobState.FAILED: import_job_pb2.ImportJob.failed,
    JobState.CANCELLED: import_job_pb2.ImportJob.cancelled,
}
ITEM_STATUSES = {
    ItemStatus.PENDING: import_job_pb2.ImportItem.pending,
    ItemStatus.RUNNING: import_job_pb2.ImportItem.pending,
    ItemStatus.SUCCESS: import_job_pb2.ImportItem.success,
    ItemStatus.SKIPPED: import_job_pb2.ImportItem.skipped,
    ItemStatus.FAILED: import_job_pb2.ImportItem.failed,
    ItemStatus.CANCELLED: import_job_pb2.ImportItem.cancelled,
}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if value:
        message.update(value)
    return message


def image_summary(image: ImageRef, urls: PublicUrls) -> import_job_pb2.ImageSummary:
    summary = import_job_pb2.ImageSummary(
        media_id=image.media_id,
        original_url=urls.original(image.media_id, image.sha256),
        url=urls.display(image.media_id, image.sha256, image.renditions),
        width=image.width, height=image.height, mime_type=image.mime_type, image_service=IMAGE_SERVICE,
    )
    if image.duplicate_of is not None:
        summary.duplicate_of.media_id = image.duplicate_of.media_id
        summary.duplicate_of.distance = image.duplicate_of.distance
    return summary


def import_item(item: ItemView, urls: PublicUrls) -> import_job_pb2.ImportItem:
    message = import_job_pb2.ImportItem(
        status=ITEM_STATUSES[item.status], external_id=item.external_id, title=item.title
    )
    if item.reason is not None:
        message.reason = item.reason
    if item.image is not None:
        message.image.CopyFrom(image_summary(item.image, urls))
    if item.last_error is not None:
        message.attempts = item.attempts
        message.last_error = item.last_error
    return message


def seed_time(value: datetime) -> str:
    """The batch import API's documented time format: `2020-01-01 13:45:12`, always UTC."""
    return value.astimezone(UTC).strftime(SEED_TIME_FORMAT)


def import_job(job: JobView, urls: PublicUrls) -> import_job_pb2.ImportJob:
    message = import_job_pb2.ImportJob(
        finished=job.finished, state=JOB_STATES[job.state], id=job.id,
        started_at=seed_time(job.started_at), start_time=timestamp(job.started_at),
    )
    if job.finished_at is not None:
        message.finished_at = seed_time(job.finished_at)
        message.finish_time.CopyFrom(timestamp(job.finished_at))
    if job.overview is not None:
        message.overview.CopyFrom(overview(job.overview))
    message.images.extend(import_item(item, urls) for item in job.items or ())
    return message


def overview(value: Overview) -> import_job_pb2.ImportJobOverview:
    return import_job_pb2.ImportJobOverview(**value.as_dict())


def _overview_from(payload: dict[str, Any]) -> import_job_pb2.ImportJobOverview:
    return import_job_pb2.ImportJobOverview(**payload.get("overview", {}))


def _item_from(payload: dict[str, Any]) -> ItemView:
    image = payload.get("image")
    return ItemView(
        status=ItemStatus(payload["status"]), reason=payload.get("reason"),
        external_id=payload["externalId"], title=payload["title"],
        image=ImageRef.from_payload(image) if image else None,
    )


def job_event(event: JobEvent, urls: PublicUrls) -> import_job_pb2.ImportJobEvent:
    message = import_job_pb2.ImportJobEvent(
        sequence=event.sequence, job_id=event.job_id, create_time=timestamp(event.created_at)
    )
    if event.snapshot is not None:
        message.snapshot.CopyFrom(import_job(event.snapshot, urls))
    elif event.kind == "job_started":
        message.job_started.CopyFrom(_overview_from(event.payload))
    elif event.kind == "item_finished":
        message.item_finished.CopyFrom(import_item(_item_from(event.payload), urls))
    elif event.kind == "job_finished":
        message.job_finished.state = JOB_STATES[JobState(event.payload["state"])]
        message.job_finished.overview.CopyFrom(_overview_from(event.payload))
    return message


def image(record: ImageRecord, urls: PublicUrls) -> image_pb2.Image:
    analysis = record.analysis
    message = image_pb2.Image(
        media_id=record.media_id, width=record.width, height=record.height, mime_type=record.mime_type,
        format=record.format, byte_size=record.byte_size, sha256=record.sha256,
        phash=analysis.get("phash") or "", placeholder=analysis.get("placeholder") or "",
        frame_count=analysis.get("frame_count", 1), has_alpha=analysis.get("has_alpha", False),
        is_grayscale=analysis.get("is_grayscale", False), system_name=record.system_name,
        external_id=record.external_id, title=record.title,
        created_at=timestamp(record.created_at), updated_at=timestamp(record.updated_at),
    )
    message.exif.CopyFrom(struct(analysis.get("exif")))
    message.metadata.CopyFrom(struct(record.metadata))
    if analysis.get("taken_at"):
        message.taken_at.CopyFrom(timestamp(datetime.fromisoformat(analysis["taken_at"])))
    if analysis.get("gps"):
        message.gps.lat, message.gps.lng = analysis["gps"]["lat"], analysis["gps"]["lng"]
    message.colors.extend(image_pb2.Color(hex=c["hex"], percent=c["percent"]) for c in analysis.get("colors", []))
    message.renditions["original"] = urls.original(record.media_id, record.sha256)
    for name in analysis.get("renditions", {}):
        message.renditions[name] = urls.rendition(record.media_id, name, record.sha256)
    duplicate = analysis.get("duplicate_of")
    if duplicate:
        message.duplicate_of.media_id = duplicate["media_id"]
        message.duplicate_of.distance = duplicate["distance"]
    return message


def _plain(value: struct_pb2.Value, field: str) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise InvalidArgument([FieldViolation(field, "numbers must be finite (no NaN or Infinity)")])
        # JSON has one number type; keep the caller's integers as integers (1, not 1.0).
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {key: _plain(item, field) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_plain(item, field) for item in value.list_value.values]
    return None


def plain_struct(message: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """A Struct as plain JSON data, refusing non-finite numbers (gRPC callers can send them) by field."""
    return {key: _plain(item, field) for key, item in message.fields.items()}
