"""PNG chunk checksums. Pillow verifies them only for some chunks (not IDAT), while browsers built on
libpng reject a file with any bad CRC: such a file would be stored but not shown."""

from __future__ import annotations

import struct
import zlib

from pixport.imaging.types import ImageRejected

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_chunks(data: bytes) -> None:
    """Raise ImageRejected unless every chunk up to IEND is complete and its CRC matches."""
    view = memoryview(data)
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", view[pos:pos + 8])
        end = pos + 8 + length + 4
        if end > len(data):
            raise ImageRejected("truncated or corrupt image: a PNG chunk runs past the end of the file")
        (expected,) = struct.unpack(">I", view[end - 4:end])
        if zlib.crc32(view[pos + 4:end - 4]) != expected:
            name = kind.decode("latin-1") if kind.isalpha() else "?"
            raise ImageRejected(f"truncated or corrupt image: PNG chunk {name} fails its checksum (CRC)")
        if kind == b"IEND":
            return
        pos = end
    raise ImageRejected("truncated or corrupt image: the PNG has no IEND chunk")
