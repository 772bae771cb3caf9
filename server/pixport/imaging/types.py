"""The vocabulary every imaging module speaks: limits, the rejection, and the analysis result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one image may cost; every limit breach becomes an ImageRejected with its own reason."""

    max_pixels: int = 50_000_000
    max_bytes: int = 25 * 1024 * 1024
    max_frames: int = 100
    timeout_seconds: float = 60.0  # per image, enforced by the pool
    memory_bytes: int = 1536 * 1024 * 1024  # RLIMIT_AS per pool process


class ImageRejected(Exception):
    """An image that cannot be imported; .reason is a short sentence a person can act on.

    The reason never carries a stack trace nor any of the image's content.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rendition:
    name: str  # "mini" | "large" | "full" | "fit2000" | "fill100"
    mime_type: str  # image/jpeg when opaque, image/webp with alpha, image/png for svg
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Color:
    hex: str  # "#EBF1F9"
    percent: float  # 13.2


@dataclass(frozen=True)
class Analysis:
    """Everything pixport keeps about one image; picklable, as it comes back from the pool."""

    format: str  # "jpeg" | "png" | "gif" | "svg" | "webp"
    mime_type: str
    width: int  # after EXIF orientation
    height: int
    byte_size: int  # of the stored original
    sha256: str  # hex, of the stored original
    original: bytes  # the bytes to store: the input, except for SVG (the sanitised document)
    exif: dict[str, Any]  # JSON-serialisable, readable tag names
    taken_at: datetime | None
    gps: tuple[float, float] | None  # (lat, lng), south and west negative
    frame_count: int
    has_alpha: bool
    is_grayscale: bool
    phash: str | None  # 16 hex chars; None for SVG
    colors: tuple[Color, ...]  # largest first
    placeholder: str | None  # ThumbHash, base64
    renditions: tuple[Rendition, ...]


MIME_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}
