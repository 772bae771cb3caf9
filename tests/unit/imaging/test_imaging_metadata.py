from __future__ import annotations

import io
import json
import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from imaging_support import encode, exif_with, textured
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from pixport.imaging import Limits, analyse
from pixport.imaging.metadata import parse_gps, parse_taken_at, read_metadata

PHOTO = textured(48, 32)


def analysed(**exif_parts: dict[int, object]) -> tuple[dict[str, object], object, object]:
    result = analyse(encode(PHOTO, "JPEG", exif=exif_with(**exif_parts)), Limits())  # type: ignore[arg-type]
    return result.exif, result.taken_at, result.gps


def test_date_time_original_becomes_taken_at_in_utc() -> None:
    _, taken_at, _ = analysed(exif_ifd={0x9003: "2018:01:01 08:00:00"})
    assert taken_at == datetime(2018, 1, 1, 8, 0, 0, tzinfo=UTC)


def test_offset_time_original_gives_the_zone() -> None:
    _, taken_at, _ = analysed(exif_ifd={0x9003: "2018:01:01 08:00:00", 0x9011: "-05:30"})
    assert taken_at == datetime(2018, 1, 1, 8, 0, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    assert taken_at is not None and taken_at.isoformat() == "2018-01-01T08:00:00-05:30"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018:01:01 08:00:00\x00", datetime(2018, 1, 1, 8, tzinfo=UTC)),
        ("2018-01-01 08:00", datetime(2018, 1, 1, 8, tzinfo=UTC)),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("2018:13:45 99:00:00", None),
        (b"2018:01:01 08:00:00", None),
        (None, None),
    ],
)
def test_taken_at_tolerates_placeholders(raw: object, expected: datetime | None) -> None:
    assert parse_taken_at(raw) == expected


@pytest.mark.parametrize(
    ("lat_ref", "lng_ref", "expected"),
    [
        ("N", "E", (48.858222, 2.294500)),
        ("S", "E", (-48.858222, 2.294500)),
        ("N", "W", (48.858222, -2.294500)),
        ("S", "W", (-48.858222, -2.294500)),
    ],
)
def test_gps_to_signed_decimal_degrees(lat_ref: str, lng_ref: str, expected: tuple[float, float]) -> None:
    gps = {
        1: lat_ref,
        2: (IFDRational(48, 1), IFDRational(51, 1), IFDRational(2960, 100)),
        3: lng_ref,
        4: (IFDRational(2, 1), IFDRational(17, 1), IFDRational(4020, 100)),
    }
    _, _, found = analysed(gps=gps)
    assert found is not None
    assert found == pytest.approx(expected, abs=1e-5)
    assert (round(found[0], 4), round(found[1], 4)) == (round(expected[0], 4), round(expected[1], 4))  # type: ignore[index]


def test_gps_nonsense_is_dropped() -> None:
    assert parse_gps({}) is None
    assert parse_gps({1: "N", 2: (IFDRational(1, 0), 0, 0), 3: "E", 4: (1, 0, 0)}) is None
    assert parse_gps({1: "N", 2: (95, 0, 0), 3: "E", 4: (1, 0, 0)}) is None
    assert parse_gps({1: "N", 2: "garbage", 3: "E", 4: (1, 0, 0)}) is None


def test_exif_is_json_with_readable_names() -> None:
    exif, _, _ = analysed(
        ifd0={
            0x010F: "Canon\x00\x00",  # Make
            0x0110: "EOS 5D",  # Model
            0x011A: IFDRational(72, 1),  # XResolution
            0x010E: "x" * 2000,  # ImageDescription: too big to keep
            0x0112: 1,  # Orientation
        },
        exif_ifd={
            0x829A: IFDRational(1, 250),  # ExposureTime
            0x8827: 400,  # ISOSpeedRatings
            0x927C: b"\x00\x01\x02vendor blob",  # MakerNote: binary
            0x9003: "2018:01:01 08:00:00",
        },
    )
    assert exif == {
        "Make": "Canon",
        "Model": "EOS 5D",
        "XResolution": 72.0,
        "Orientation": 1,
        "ExposureTime": 0.004,
        "ISOSpeedRatings": 400,
        "DateTimeOriginal": "2018:01:01 08:00:00",
    }
    json.dumps(exif, allow_nan=False)


def tiff(entries: list[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    """A big-endian TIFF header and one IFD of (tag, type, count, value/offset) entries."""
    body = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHII", *entry) for entry in entries)
    return b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + body + struct.pack(">I", next_ifd)


MALFORMED_EXIF = {
    "huge count": tiff([(0x010F, 2, 0x7FFFFFFF, 0x100)]),
    "offset beyond the block": tiff([(0x8769, 4, 1, 0xFFFFFF00), (0x8825, 4, 1, 0x7FFFFFFF)]),
    "exif ifd loops to itself": tiff([(0x8769, 4, 1, 8)], next_ifd=8),
    "unknown type": tiff([(0x010F, 99, 4, 0)]),
    "first ifd beyond the block": b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",
    "not tiff at all": b"Exif\x00\x00" + random.Random(7).randbytes(300),
    "header only": b"Exif\x00\x00",
}


@pytest.mark.parametrize("raw", MALFORMED_EXIF.values(), ids=MALFORMED_EXIF.keys())
def test_malformed_exif_never_fails_the_image(raw: bytes) -> None:
    result = analyse(encode(PHOTO, "JPEG", exif=raw), Limits())
    assert (result.width, result.height) == PHOTO.size
    json.dumps(result.exif, allow_nan=False)
    assert result.gps is None and result.taken_at is None


def test_invalid_orientation_is_ignored() -> None:
    data = encode(PHOTO, "JPEG", exif=exif_with(ifd0={0x0112: 9}))
    with Image.open(io.BytesIO(data)) as im:
        assert read_metadata(im).orientation == 1
    assert analyse(data, Limits()).width == PHOTO.width


def test_png_exif_is_read_too() -> None:
    exif = exif_with(exif_ifd={0x9003: "2020:02:29 23:59:59"}).tobytes()
    data = encode(PHOTO, "PNG", exif=exif)
    assert analyse(data, Limits()).taken_at == datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC)
