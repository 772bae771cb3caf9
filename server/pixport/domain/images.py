"""Reading stored images and locating the bytes of their renditions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pixport.domain.auth import READ_SCOPE, Principal
from pixport.domain.errors import NotFound
from pixport.domain.ids import looks_like_id
from pixport.domain.records import ImageRecord


class ImageStore(Protocol):
    """What image reads need of the store (implemented by store.images.ImageStore)."""

    async def get_image(self, organization_id: str, media_id: str) -> ImageRecord | None: ...

    async def get_blobs(self, media_id: str) -> dict[str, Any] | None:
        """The blob keys of an image's original and renditions (capability lookup: no organisation)."""
        ...

ORIGINAL = "original"
RENDITION_NAMES = ("mini", "large", "full", "fit2000", "fill100")
IMMUTABLE = "public, max-age=31536000, immutable"
# Unversioned URLs may see new bytes after a re-import: cache briefly, revalidate by ETag.
REVALIDATE = "public, max-age=60, must-revalidate"


@dataclass(frozen=True)
class BlobLocation:
    key: str
    mime_type: str
    cache_control: str


class Images:
    def __init__(self, images: ImageStore) -> None:
        self._images = images

    async def get(self, principal: Principal, media_id: str) -> ImageRecord:
        principal.require(READ_SCOPE)
        record = await self._images.get_image(principal.organization_id, media_id) \
            if looks_like_id(media_id) else None
        if record is None:
            raise NotFound(f"image {media_id[:64]!r} not found")
        return record

    async def locate(self, media_id: str, rendition: str, version: str) -> BlobLocation:
        """The blob behind a rendition URL. The media id is the capability: no principal."""
        found = await self._images.get_blobs(media_id) if looks_like_id(media_id) else None
        if found is None:
            raise NotFound(f"image {media_id[:64]!r} not found")
        analysis = found["analysis"]
        if rendition == ORIGINAL:
            original = analysis.get("original", {})
            key, mime_type = original.get("key", found["sha256"]), found["mime_type"]
        else:
            entry = analysis.get("renditions", {}).get(rendition)
            if entry is None:
                raise NotFound(f"image {media_id[:64]!r} has no rendition {rendition[:32]!r}")
            key, mime_type = entry["key"], entry["mime_type"]
        current = bool(version) and found["sha256"].startswith(version) and len(version) >= 8
        return BlobLocation(key=key, mime_type=mime_type, cache_control=IMMUTABLE if current else REVALIDATE)
