"""From the pixel pipeline's Analysis and the keys its bytes were stored under, to the record the store upserts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixport.domain.queue import StoredImage
from pixport.imaging.types import Analysis


def signed_phash(phash: str | None) -> int | None:
    """The 64-bit hash as PostgreSQL's signed bigint."""
    if not phash:
        return None
    value = int(phash, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def blobs_of(analysis: Analysis) -> list[bytes]:
    """The bytes to store, in the order image_record() expects their keys: original, then renditions."""
    return [analysis.original, *(rendition.data for rendition in analysis.renditions)]


def image_record(analysis: Analysis, keys: Sequence[str]) -> StoredImage:
    """The record for an analysed image whose blobs_of() were stored under `keys` (same order)."""
    if len(keys) != 1 + len(analysis.renditions):
        raise ValueError(f"expected {1 + len(analysis.renditions)} blob keys, got {len(keys)}")
    original_key, *rendition_keys = keys
    # The content hash and size come from the bytes this process holds and hashed, never from the pixel
    # process's own report: a child subverted by a hostile file could otherwise make a changed image read
    # as unchanged (skipped) on re-import, or the reverse. For an honest child they are the same values.
    byte_size = len(analysis.original)
    renditions: dict[str, dict[str, Any]] = {}
    for rendition, key in zip(analysis.renditions, rendition_keys, strict=True):
        renditions[rendition.name] = {
            "key": key, "mime_type": rendition.mime_type,
            "width": rendition.width, "height": rendition.height, "byte_size": len(rendition.data),
        }
    record: dict[str, Any] = {
        "original": {"key": original_key, "mime_type": analysis.mime_type, "byte_size": byte_size},
        "renditions": renditions,
        "exif": analysis.exif,
        "taken_at": analysis.taken_at.isoformat() if analysis.taken_at else None,
        "gps": {"lat": analysis.gps[0], "lng": analysis.gps[1]} if analysis.gps else None,
        "phash": analysis.phash,
        "colors": [{"hex": color.hex, "percent": color.percent} for color in analysis.colors],
        "placeholder": analysis.placeholder,
        "frame_count": analysis.frame_count,
        "has_alpha": analysis.has_alpha,
        "is_grayscale": analysis.is_grayscale,
    }
    return StoredImage(
        sha256=original_key, format=analysis.format, mime_type=analysis.mime_type,
        width=analysis.width, height=analysis.height, byte_size=byte_size,
        analysis=record, phash=signed_phash(analysis.phash),
    )
