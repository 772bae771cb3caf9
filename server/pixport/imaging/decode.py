"""The one decode per image: JPEG draft to the size the renditions need, then upright and in a web mode."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageCms

from pixport.imaging.limits import CORRUPT
from pixport.imaging.types import ImageRejected

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ICC_SPACE = {"L": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}
_MAX_ICC_BYTES = 64 * 1024
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # upright; mode "L", "RGB" or "RGBA" (RGBA only when some pixel is transparent)
    width: int  # of the whole upright original, which `image` may be a reduced copy of
    height: int
    has_alpha: bool
    source_grayscale: bool  # the file itself stores gray levels (L, LA, 16-bit gray, bilevel)
    icc_profile: bytes | None  # to embed in renditions; matches the mode of `image`


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def decode_scale(width: int, height: int) -> float:
    """The smallest scale of the upright original from which every rendition can be cut without upscaling."""
    fit2000 = 2000 / max(width, height)
    fill100 = 300 / width
    cover = 200 / min(width, height)
    return min(1.0, max(fit2000, fill100, cover))


def decode(im: Image.Image, orientation: int) -> Decoded:
    width, height = upright_size(im.size, orientation)
    scale = decode_scale(width, height)
    if im.format == "JPEG" and scale < 1.0:
        # The box must have the image's own aspect: draft() picks the largest DCT scale (1/2, 1/4, 1/8)
        # that keeps BOTH sides at least as large as the box, so a square box on a 4:3 photo does nothing.
        box = (max(1, math.ceil(im.size[0] * scale)), max(1, math.ceil(im.size[1] * scale)))
        im.draft("RGB", box)
    load_pixels(im)
    source_grayscale = im.mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N")
    icc = im.info.get("icc_profile")
    image = _web_mode(im, icc if isinstance(icc, bytes) else None)
    has_alpha = image.mode == "RGBA" and _has_transparency(image)
    if image.mode == "RGBA" and not has_alpha:
        image = image.convert("RGB")
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        image = image.transpose(method)
    return Decoded(
        image=image,
        width=width,
        height=height,
        has_alpha=has_alpha,
        source_grayscale=source_grayscale,
        icc_profile=_matching_icc(icc, image.mode),
    )


def load_pixels(im: Image.Image) -> None:
    """Decode (once: Pillow keeps the pixels), reporting a broken file as such."""
    try:
        im.load()
    except _DECODE_ERRORS:
        raise ImageRejected(CORRUPT) from None


def _web_mode(im: Image.Image, icc: bytes | None) -> Image.Image:
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        # convert("L") would clip every value above 255 to white; scale the 16-bit range instead.
        wide = np.asarray(im).astype(np.uint32)
        return Image.fromarray(np.clip(wide >> 8, 0, 255).astype(np.uint8), "L")
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc)
    if mode in ("L", "RGB", "RGBA"):
        if "transparency" in im.info and mode != "RGBA":
            return im.convert("RGBA")
        return im
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode in ("1",):
        return im.convert("L")
    if mode in ("LA", "La", "PA", "RGBa"):
        return im.convert("RGBA")
    return im.convert("RGB")


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc is not None:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: fall back to the naive conversion below
    return im.convert("RGB")


def _has_transparency(image: Image.Image) -> bool:
    extrema: Any = image.getchannel("A").getextrema()
    return bool(extrema[0] < 255)


def _matching_icc(icc: object, mode: str) -> bytes | None:
    """The original profile, if it describes the colour space of the pixels we now hold."""
    if not isinstance(icc, bytes) or len(icc) < 20 or len(icc) > _MAX_ICC_BYTES:
        return None
    return icc if icc[16:20] == _ICC_SPACE.get(mode) else None
