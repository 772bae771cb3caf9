"""Refuse what is too big before paying for it: bytes, header dimensions, frames."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

from pixport.imaging.types import ImageRejected, Limits

# Pillow's own guard, set deliberately: open() raises DecompressionBombError above twice this (reported as a
# bomb) and only warns above it, where our own check of im.size gives the plain "too large" reason. Pool
# processes handle one image at a time, so setting the process-wide value per call is safe there.
Image.MAX_IMAGE_PIXELS = Limits().max_pixels

# Only the formats sniff() admits are ever handed to Pillow, so a hostile file cannot reach a rarely used
# decoder (e.g. a crafted ICNS or FLI) just by its magic bytes.
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}

CORRUPT = "truncated or corrupt image: the file could not be decoded"


def check_byte_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_bytes:
        raise ImageRejected(f"file too large: {len(data)} bytes, the limit is {limits.max_bytes} bytes")
    if not data:
        raise ImageRejected("empty file: there is no image content")


@contextmanager
def open_image(data: bytes, fmt: str, limits: Limits) -> Iterator[Image.Image]:
    """Open lazily (header only), refuse oversized dimensions, and close whatever happens."""
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            # Ignored: the bomb warning (our own size check follows), and the EXIF warnings Pillow's JPEG
            # plugin raises while it reads the DPI; metadata.py reads EXIF defensively later.
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[fmt]])
    except Image.DecompressionBombError:
        raise ImageRejected(
            f"image dimensions too large (possible decompression bomb): the limit is {limits.max_pixels} pixels"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError):
        # Pillow reports broken headers with any of these (UnidentifiedImageError is an OSError).
        raise ImageRejected(CORRUPT) from None
    try:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ImageRejected("image has no pixels: its width or height is zero")
        if width * height > limits.max_pixels:
            raise ImageRejected(
                f"image dimensions too large: {width}x{height} is {width * height} pixels, "
                f"the limit is {limits.max_pixels}"
            )
        yield im
    finally:
        im.close()


def count_frames(im: Image.Image, limits: Limits) -> int:
    """Number of frames, refusing more than max_frames without walking the whole file."""
    try:
        frames = _bounded_frame_count(im, limits.max_frames + 1)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError):
        raise ImageRejected(CORRUPT) from None
    if frames > limits.max_frames:
        raise ImageRejected(f"too many frames: more than {limits.max_frames} in an animation")
    return frames


def _bounded_frame_count(im: Image.Image, stop: int) -> int:
    seek_header = getattr(im, "_seek", None)
    if im.format != "GIF" or seek_header is None:
        # PNG (acTL) and WebP declare their frame count in the header: reading it is free.
        return int(getattr(im, "n_frames", 1))
    # GIF has no frame count: Pillow's n_frames walks every block of the file, which for a 25 MB file of
    # one-pixel frames is seconds of work. Walk headers only (no decoding) and stop at the limit.
    count = 1
    try:
        while count < stop:
            seek_header(count, False)
            count += 1
    except EOFError:
        pass
    finally:
        im.seek(0)
    return count
