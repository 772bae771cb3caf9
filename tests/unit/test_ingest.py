"""From the pixel pipeline's Analysis to stored blobs and the record the store upserts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pixport.blobs import FileBlobStore
from pixport.imaging import Analysis, Color, Rendition
from pixport.ingest import signed_phash, stored_image


@pytest.mark.parametrize(
    ("phash", "value"),
    [
        ("0000000000000000", 0),
        ("0", 0),
        ("0000000000000001", 1),
        ("7fffffffffffffff", 2**63 - 1),
        ("8000000000000000", -(2**63)),
        ("8000000000000001", -(2**63) + 1),
        ("ffffffffffffffff", -1),
        ("FFFFFFFFFFFFFFFE", -2),
        ("8f373714acfcf4d0", 0x8F373714ACFCF4D0 - 2**64),
    ],
)
def test_signed_phash_is_the_bigint_of_the_same_bits(phash: str, value: int) -> None:
    result = signed_phash(phash)
    assert result == value
    assert result is not None and -(2**63) <= result < 2**63
    assert result & (2**64 - 1) == int(phash, 16)  # same 64 bits


@pytest.mark.parametrize("phash", [None, ""])
def test_no_phash_is_none(phash: str | None) -> None:
    assert signed_phash(phash) is None


def analysis(**overrides: object) -> Analysis:
    original = b"\xff\xd8original-bytes"
    fields: dict[str, object] = {
        "format": "jpeg", "mime_type": "image/jpeg", "width": 640, "height": 480, "byte_size": len(original),
        "sha256": hashlib.sha256(original).hexdigest(), "original": original, "exif": {"Make": "Canon"},
        "taken_at": datetime(2023, 7, 1, 10, tzinfo=UTC), "gps": (48.85, -2.35), "frame_count": 1,
        "has_alpha": False, "is_grayscale": False, "phash": "ffffffffffffffff",
        "colors": (Color("#EBF1F9", 13.2),), "placeholder": "abc",
        "renditions": (
            Rendition("mini", "image/jpeg", 64, 48, b"mini-bytes"),
            Rendition("full", "image/jpeg", 640, 480, b"full-bytes"),
            Rendition("fill100", "image/jpeg", 100, 100, b"mini-bytes"),  # same bytes as mini
        ),
    }
    fields.update(overrides)
    return Analysis(**fields)  # type: ignore[arg-type]


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_stored_image_writes_every_blob_and_records_its_key(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    result = analysis()
    stored = await stored_image(result, blobs)
    record = stored.analysis
    assert record["original"] == {"key": result.sha256, "mime_type": "image/jpeg", "byte_size": result.byte_size}
    assert set(record["renditions"]) == {"mini", "full", "fill100"}
    assert record["renditions"]["full"] == {
        "key": hashlib.sha256(b"full-bytes").hexdigest(), "mime_type": "image/jpeg", "width": 640,
        "height": 480, "byte_size": len(b"full-bytes"),
    }
    assert record["renditions"]["mini"]["key"] == record["renditions"]["fill100"]["key"]
    for key in [record["original"]["key"], *(r["key"] for r in record["renditions"].values())]:
        assert await blobs.exists(key)
    assert len(stored_files(tmp_path)) == 3  # original, mini(=fill100), full
    assert b"".join([chunk async for chunk in blobs.read_chunks(result.sha256)]) == result.original


async def test_stored_image_record_fields(tmp_path: Path) -> None:
    stored = await stored_image(analysis(), FileBlobStore(tmp_path))
    assert (stored.format, stored.mime_type, stored.width, stored.height) == ("jpeg", "image/jpeg", 640, 480)
    assert stored.phash == -1
    record = stored.analysis
    assert record["taken_at"] == "2023-07-01T10:00:00+00:00"
    assert record["gps"] == {"lat": 48.85, "lng": -2.35}
    assert record["colors"] == [{"hex": "#EBF1F9", "percent": 13.2}]
    assert record["phash"] == "ffffffffffffffff"
    assert (record["frame_count"], record["has_alpha"], record["is_grayscale"]) == (1, False, False)


async def test_a_pixel_process_cannot_name_the_content_hash_or_size(tmp_path: Path) -> None:
    honest = analysis()
    lying = analysis(sha256="0" * 64, byte_size=1)  # as a subverted child might report
    stored = await stored_image(lying, FileBlobStore(tmp_path))
    assert stored.sha256 == hashlib.sha256(honest.original).hexdigest() == honest.sha256
    assert stored.byte_size == len(honest.original) == stored.analysis["original"]["byte_size"]


async def test_stored_image_without_optional_reads(tmp_path: Path) -> None:
    stored = await stored_image(analysis(taken_at=None, gps=None, phash=None, renditions=()), FileBlobStore(tmp_path))
    assert stored.phash is None
    assert stored.analysis["taken_at"] is None
    assert stored.analysis["gps"] is None
    assert stored.analysis["renditions"] == {}
