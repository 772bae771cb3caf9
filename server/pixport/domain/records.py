"""The records the domain speaks: jobs, items, images. Frozen; built by the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    STARTED = "started"  # at least one item has no final status
    SUCCESS = "success"  # all final, at least one imported or skipped
    FAILED = "failed"  # all final, none imported, or the job could not run
    CANCELLED = "cancelled"  # cancelled by the caller


class ItemStatus(StrEnum):
    PENDING = "pending"  # queued
    RUNNING = "running"  # claimed by a worker (reported as pending)
    SUCCESS = "success"  # created or updated an image
    SKIPPED = "skipped"  # same key and same content already stored
    FAILED = "failed"  # could not be imported; reason says why
    CANCELLED = "cancelled"  # job cancelled before the item was processed

    @property
    def final(self) -> bool:
        return self not in (ItemStatus.PENDING, ItemStatus.RUNNING)


@dataclass(frozen=True)
class DuplicateRef:
    media_id: str
    distance: int


@dataclass(frozen=True)
class ImageRef:
    """What a job status shows of a stored image."""

    media_id: str
    width: int
    height: int
    mime_type: str
    sha256: str
    renditions: tuple[str, ...] = ()
    duplicate_of: DuplicateRef | None = None

    def as_payload(self) -> dict[str, Any]:
        """The JSON form kept in the event log and on the finished item."""
        return {
            "mediaId": self.media_id, "width": self.width, "height": self.height, "mimeType": self.mime_type,
            "sha256": self.sha256, "renditions": list(self.renditions),
            "duplicateOf": (
                {"mediaId": self.duplicate_of.media_id, "distance": self.duplicate_of.distance}
                if self.duplicate_of else None
            ),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImageRef:
        duplicate = payload.get("duplicateOf")
        return cls(
            media_id=payload["mediaId"], width=payload["width"], height=payload["height"],
            mime_type=payload["mimeType"], sha256=payload["sha256"], renditions=tuple(payload.get("renditions", ())),
            duplicate_of=DuplicateRef(duplicate["mediaId"], duplicate["distance"]) if duplicate else None,
        )


@dataclass(frozen=True)
class ItemView:
    status: ItemStatus
    reason: str | None
    external_id: str
    title: str
    image: ImageRef | None


@dataclass(frozen=True)
class Overview:
    total: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0
    cancelled: int = 0
    pending: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Overview:
        return cls(
            total=sum(counts.values()),
            success=counts.get("success", 0),
            skipped=counts.get("skipped", 0),
            failed=counts.get("failed", 0),
            cancelled=counts.get("cancelled", 0),
            pending=counts.get("pending", 0) + counts.get("running", 0),
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total, "success": self.success, "skipped": self.skipped,
            "failed": self.failed, "cancelled": self.cancelled, "pending": self.pending,
        }


@dataclass(frozen=True)
class JobView:
    id: str
    organization_id: str
    system_name: str
    state: JobState
    started_at: datetime
    finished_at: datetime | None
    item_count: int
    last_sequence: int
    webhook_url: str | None = None
    context: dict[str, Any] | None = None
    items: tuple[ItemView, ...] | None = None  # None when not loaded
    overview: Overview | None = None  # counts by item status; None when not loaded

    @property
    def finished(self) -> bool:
        return self.state is not JobState.STARTED


@dataclass(frozen=True)
class ImageRecord:
    media_id: str
    organization_id: str
    system_name: str
    external_id: str
    title: str
    metadata: dict[str, Any]
    sha256: str
    format: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    analysis: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobEvent:
    """An entry of a job's log, or (kind "snapshot") the job's state at a log position."""

    job_id: str
    sequence: int
    kind: str  # "snapshot" | "job_started" | "item_finished" | "job_finished"
    payload: dict[str, Any]
    created_at: datetime
    snapshot: JobView | None = None

    @property
    def final(self) -> bool:
        return self.kind == "job_finished" or (self.snapshot is not None and self.snapshot.finished)
