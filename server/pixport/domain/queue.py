"""The queue's records and the port the journey uses: claims under a lease, and their outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pixport.domain.records import ImageRef, ItemStatus


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    job_id: str
    organization_id: str
    position: int
    external_id: str
    url: str
    title: str
    metadata: dict[str, Any]
    media_type: str
    attempts: int
    system_name: str
    album_id: str | None = None
    connector: str = "url"  # how the bytes are fetched: "url" or a connector name ("salesforce")
    connector_ref: str | None = None  # the connector's id for the bytes (e.g. an attachment id)
    fetch_headers: dict[str, str] | None = None  # caller's headers for the URL fetch
    lease_owner: str = ""  # the claim holding the item: unique per claim, so a stale holder can't finish it
    reclaimed: bool = False  # claimed again because an earlier lease expired (its worker died)


@dataclass(frozen=True)
class StoredImage:
    """What the pipeline produced for an item, ready to upsert."""

    sha256: str
    format: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    analysis: dict[str, Any]
    phash: int | None = None  # signed 64-bit form of the perceptual hash


@dataclass(frozen=True)
class Outcome:
    status: ItemStatus
    reason: str | None
    image: ImageRef | None


@dataclass(frozen=True)
class Failure:
    """An item to finish as failed, for the batched finish."""

    item: ClaimedItem
    reason: str
    owner: str = ""  # the claim finishing it; empty means the item's own lease_owner


class QueuePort(Protocol):
    """What the journey and the runner need of the queue (implemented by store.queue.QueueStore)."""

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedItem]: ...

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool: ...

    async def extend_leases(self, items: list[ClaimedItem], lease_seconds: float) -> None: ...

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None: ...

    async def finish_failed_many(self, failures: Sequence[Failure]) -> list[Outcome | None]: ...

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None: ...


def import_status(existing_sha256: str | None, new_sha256: str) -> tuple[ItemStatus, str | None]:
    """Same key and same bytes: nothing to change (skipped); otherwise the image is created or updated."""
    if existing_sha256 is not None and existing_sha256 == new_sha256:
        return ItemStatus.SKIPPED, "already exists"
    return ItemStatus.SUCCESS, None


def item_finished_payload(item: ClaimedItem, outcome: Outcome) -> dict[str, Any]:
    """The `item_finished` event of the job's log."""
    payload: dict[str, Any] = {
        "status": outcome.status.value, "externalId": item.external_id, "title": item.title,
    }
    if outcome.reason is not None:
        payload["reason"] = outcome.reason
    if outcome.image is not None:
        payload["image"] = outcome.image.as_payload()
    return payload
