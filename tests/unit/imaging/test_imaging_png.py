"""PNG chunk checksums are verified, IDAT included."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image
from pixport.imaging.png import check_chunks
from pixport.imaging.types import ImageRejected


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def _corrupt_crc(data: bytes, kind: bytes) -> bytes:
    start = data.index(kind) - 4
    (length,) = struct.unpack(">I", data[start:start + 4])
    crc_at = start + 8 + length
    return data[:crc_at] + bytes(b ^ 0xFF for b in data[crc_at:crc_at + 4]) + data[crc_at + 4:]


def test_a_valid_png_passes() -> None:
    check_chunks(_png())


@pytest.mark.parametrize("kind", [b"IHDR", b"IDAT", b"IEND"])
def test_a_bad_crc_names_the_chunk(kind: bytes) -> None:
    with pytest.raises(ImageRejected, match=f"chunk {kind.decode()} fails its checksum"):
        check_chunks(_corrupt_crc(_png(), kind))


def test_truncation_is_reported() -> None:
    data = _png()
    with pytest.raises(ImageRejected, match="truncated"):
        check_chunks(data[: len(data) - 20])
    with pytest.raises(ImageRejected, match="IEND"):
        check_chunks(data[: data.index(b"IEND") - 4])
