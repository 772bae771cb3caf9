"""The work queue's vocabulary: an item a worker holds, what its pixels produced, and how it ended.

Moved here from store/queue.py so that the journey (domain) can speak of them without importing the store;
store/queue.py re-exports the names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
