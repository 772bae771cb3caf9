"""Images built for the imaging tests with Pillow (no fixture files)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageDraw

RED = (220, 20, 30)
BLUE = (20, 40, 210)


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def textured(width: int, height: int, seed: int = 1, mode: str = "RGB") -> Image.Image:
    """Smooth gradients, shapes and a little noise: something a hash or a codec can bite on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [100 + 90 * np.sin(x / (17 + 9 * c) + seed) * np.cos(y / (23 + 5 * c)) for c in range(3)]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 4, (height, width, 3))
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(width // 10 + 1, width // 3 + 2))
        draw.ellipse((x0, y0, x0 + size, y0 + size), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image.convert(mode)


def marked(width: int, height: int) -> Image.Image:
    """White, with a red block in the top-left corner: shows where "up" went after a transpose."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle((0, 0, width // 4, height // 4), fill=RED)
    return image


def stored_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores so that applying `orientation` shows `upright`."""
    inverse = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,  # the viewer rotates 270 (90 clockwise) to undo it
        8: Image.Transpose.ROTATE_270,
    }
    return upright.transpose(inverse[orientation])


def exif_with(
    ifd0: dict[int, Any] | None = None, exif_ifd: dict[int, Any] | None = None, gps: dict[int, Any] | None = None
) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    if exif_ifd:
        exif.get_ifd(ExifTags.IFD.Exif).update(exif_ifd)
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
    return exif


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes whose header claims width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def gif(frames: list[Image.Image], **params: Any) -> bytes:
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0, **params)


def half_red_half_blue(width: int = 64, height: int = 32) -> Image.Image:
    image = Image.new("RGB", (width, height), RED)
    ImageDraw.Draw(image).rectangle((width // 2, 0, width, height), fill=BLUE)
    return image


def color_at(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        pixel = image.convert("RGB").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def is_reddish(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 150 and pixel[1] < 100 and pixel[2] < 100
