"""EXIF, read once per image and defensively: what cannot be read is dropped, never raised."""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from numbers import Rational
from typing import Any

from PIL import ExifTags, Image

_MAX_VALUE_BYTES = 1024
_MAX_TOTAL_BYTES = 64 * 1024  # a PNG eXIf chunk is not bounded by JPEG's 64 KiB segment
# Pointers to sub-IFDs and the thumbnail, not metadata a person reads.
_SKIPPED_TAGS = {0x8769, 0x8825, 0xA005, 0x0201, 0x0202, 0x014A}
_DATETIME = re.compile(r"(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_DATE_TIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Metadata:
    exif: dict[str, Any]
    taken_at: datetime | None
    gps: tuple[float, float] | None
    orientation: int  # EXIF orientation, 1 when absent or invalid


def read_metadata(im: Image.Image) -> Metadata:
    # Pillow warns ("Corrupt EXIF data", "Possibly corrupt ...") and skips what it cannot parse; any error
    # it still raises means the block is unusable, and an image without metadata is still an image.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ifd0 = _safe_dict(lambda: dict(im.getexif()))
        exif_ifd = _safe_dict(lambda: _ifd(im, ExifTags.IFD.Exif))
        gps_ifd = _safe_dict(lambda: _ifd(im, ExifTags.IFD.GPSInfo))
    exif = _readable(ifd0, exif_ifd)
    orientation = ifd0.get(_ORIENTATION, 1)
    return Metadata(
        exif=exif,
        taken_at=parse_taken_at(exif_ifd.get(_DATE_TIME_ORIGINAL), exif_ifd.get(_OFFSET_TIME_ORIGINAL)),
        gps=parse_gps(gps_ifd),
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
    )


def _ifd(im: Image.Image, tag: int) -> dict[int, Any]:
    exif: Any = im.getexif()  # get_ifd is untyped in Pillow
    return dict(exif.get_ifd(tag))


def _safe_dict(read: Any) -> dict[int, Any]:
    try:
        value = read()
    except MemoryError:
        raise
    except Exception:  # hostile EXIF can raise nearly anything from inside Pillow's parser
        return {}
    return value if isinstance(value, dict) else {}


def _readable(*ifds: dict[int, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    total = 0
    for ifd in ifds:
        for tag, raw in ifd.items():
            name = ExifTags.TAGS.get(tag) if isinstance(tag, int) else None
            if name is None or tag in _SKIPPED_TAGS:
                continue
            value = json_value(raw)
            if value is None:
                continue
            try:
                size = len(json.dumps(value, allow_nan=False))
            except (ValueError, TypeError):
                continue
            if size <= _MAX_VALUE_BYTES and total + size <= _MAX_TOTAL_BYTES:
                out[name] = value
                total += size
    return out


def json_value(raw: Any) -> Any:
    """EXIF value as JSON, or None to drop it (binary, unreadable, not finite)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return raw
    if isinstance(raw, Rational | float):
        return _finite_float(raw)
    if isinstance(raw, str):
        text = raw.replace("\x00", "").strip()
        return text or None
    if isinstance(raw, tuple | list):
        if len(raw) > _MAX_VALUE_BYTES:
            return None
        items = [json_value(item) for item in raw]
        return None if any(item is None for item in items) else items
    return None  # bytes (MakerNote, UserComment, XP*) and anything unexpected


def _finite_float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def parse_taken_at(raw: Any, offset: Any = None) -> datetime | None:
    """EXIF "2018:01:01 08:00:00" to an aware datetime: OffsetTimeOriginal when given, else UTC."""
    if not isinstance(raw, str):
        return None
    match = _DATETIME.match(raw.replace("\x00", "").strip())
    if match is None:
        return None
    year, month, day, hour, minute = (int(group) for group in match.groups()[:5])
    second = int(match.group(6) or 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=_timezone(offset))
    except ValueError:  # "0000:00:00 00:00:00" and other placeholders
        return None


def _timezone(raw: Any) -> timezone:
    if isinstance(raw, str):
        match = _OFFSET.match(raw.replace("\x00", "").strip())
        if match is not None:
            sign = -1 if match.group(1) == "-" else 1
            delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
            if delta < timedelta(hours=24):
                return timezone(sign * delta)
    return UTC


def parse_gps(gps_ifd: dict[int, Any]) -> tuple[float, float] | None:
    """GPS IFD to (lat, lng) in decimal degrees, south and west negative; None if absent or nonsense."""
    latitude = _degrees(gps_ifd.get(2), gps_ifd.get(1), "S")
    longitude = _degrees(gps_ifd.get(4), gps_ifd.get(3), "W")
    if latitude is None or longitude is None:
        return None
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return (latitude, longitude)


def _degrees(raw: Any, ref: Any, negative: str) -> float | None:
    parts = raw if isinstance(raw, tuple | list) else (raw,)
    if not 1 <= len(parts) <= 3:
        return None
    degrees = 0.0
    for index, part in enumerate(parts):
        value = _finite_float(part)
        if value is None:
            return None
        degrees += value / 60**index
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", errors="ignore")
    if isinstance(ref, str) and ref.replace("\x00", "").strip().upper() == negative:
        degrees = -degrees
    return degrees
