"""Dominant colours and the grayscale test, both from a small copy (never the full image)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image

from pixport.imaging.types import Color

SAMPLE_SIZE = 64
PALETTE_SIZE = 8
_MIN_PERCENT = 1.0
_SAME_COLOR = 6  # max channel difference of palette entries reported as one colour
_GRAY_TOLERANCE = 6  # JPEG chroma rounding leaves a gray photo a few levels off between channels


def sample(image: Image.Image) -> Image.Image:
    """A copy at most SAMPLE_SIZE on its longest side, in RGBA, for colour statistics."""
    small = image.copy()
    small.thumbnail((SAMPLE_SIZE, SAMPLE_SIZE), Image.Resampling.BILINEAR)
    return small.convert("RGBA")


def dominant_colors(small: Image.Image) -> tuple[Color, ...]:
    """Up to PALETTE_SIZE colours, largest first, each at least 1% of the visible pixels."""
    rgba = small.convert("RGBA")
    pixels = np.asarray(rgba)
    opaque = pixels[..., 3] >= 128
    if opaque.all():
        # All visible: median cut works on the pixels' histogram, so the image itself serves as the strip.
        strip, total = rgba.convert("RGB"), rgba.width * rgba.height
    else:
        visible = pixels[opaque][:, :3]
        if len(visible) == 0:
            return ()
        strip, total = Image.fromarray(np.ascontiguousarray(visible.reshape(1, -1, 3)), "RGB"), len(visible)
    quantised = strip.quantize(colors=PALETTE_SIZE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette = quantised.getpalette() or []
    indices, index_counts = np.unique(np.asarray(quantised), return_counts=True)
    found = sorted(
        (
            (count, (palette[index * 3], palette[index * 3 + 1], palette[index * 3 + 2]))
            for index, count in zip(indices.tolist(), index_counts.tolist(), strict=True)
        ),
        reverse=True,
    )
    # Median cut splits even a flat area when it has room to; fold near-identical entries into the larger.
    counts: Counter[tuple[int, int, int]] = Counter()
    for count, rgb in found:
        twin = next((kept for kept in counts if _close(rgb, kept)), rgb)
        counts[twin] += count
    colors = [
        Color(hex="#{:02X}{:02X}{:02X}".format(*rgb), percent=round(100 * count / total, 1))
        for rgb, count in counts.most_common()
        if 100 * count / total >= _MIN_PERCENT
    ]
    return _cap_total(colors)


def _close(first: tuple[int, int, int], second: tuple[int, int, int]) -> bool:
    return max(abs(a - b) for a, b in zip(first, second, strict=True)) <= _SAME_COLOR


def _cap_total(colors: list[Color]) -> tuple[Color, ...]:
    # Rounding each share can push the sum to 100.1; take the excess off the largest.
    excess = round(sum(color.percent for color in colors) - 100, 1)
    if colors and excess > 0:
        colors[0] = Color(hex=colors[0].hex, percent=round(colors[0].percent - excess, 1))
    return tuple(colors)


def is_grayscale(small: Image.Image) -> bool:
    pixels = np.asarray(small.convert("RGBA"))
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # Spread between the channels of each pixel (uint8 cannot underflow: max >= min). Elementwise
    # maximum/minimum rather than a reduction over the last axis, which numpy runs ten times slower here.
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    visible = pixels[..., 3] > 0
    if not visible.any():
        return True
    return bool(spread[visible].max() <= _GRAY_TOLERANCE)
