"""ThumbHash placeholders (https://evanw.github.io/thumbhash/), encoded with numpy.

A ~25-byte hash that decodes client-side to a blurred preview, keeping the aspect ratio and alpha. Encoded
here rather than with a package: the reference Python port is pure Python (30 ms a hash) and pinned to an
old Pillow; this is the same algorithm as the reference JavaScript encoder, byte for byte.
"""

from __future__ import annotations

import base64
import functools
import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image

MAX_SIDE = 100  # the format's limit on the input size


def thumbhash(image: Image.Image) -> str:
    """Base64 ThumbHash of the image, from a copy at most 100 px on its longest side."""
    # Reduced without alpha unless it has one: Pillow resizes RGBA premultiplied (twice the work), which
    # for an opaque image gives the same pixels as resizing its RGB.
    opaque = image.mode in ("RGB", "L") and "transparency" not in image.info
    small = image.convert("RGB" if opaque else "RGBA")
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    return base64.b64encode(rgba_to_thumbhash(np.asarray(small))).decode("ascii")


def rgba_to_thumbhash(pixels: NDArray[np.uint8]) -> bytes:
    """ThumbHash of an RGBA (or RGB, read as opaque) array at most 100 px on either side."""
    height, width = pixels.shape[:2]
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValueError(f"{width}x{height} does not fit in {MAX_SIDE}x{MAX_SIDE}")
    # One contiguous plane per channel: column slices of an (N, 4) array make every step several times
    # slower at this size.
    planes = np.ascontiguousarray(pixels.reshape(-1, pixels.shape[2]).T, dtype=np.float64) / 255
    colour = planes[:3]
    alpha = planes[3] if len(planes) == 4 else np.ones(width * height)
    total_alpha = float(alpha.sum())
    average = colour @ alpha / total_alpha if total_alpha else np.zeros(3)
    has_alpha = total_alpha < width * height
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the room
    lx = max(1, _round(l_limit * width / max(width, height)))
    ly = max(1, _round(l_limit * height / max(width, height)))
    # Composite over the average colour, then to luminance, yellow-blue, red-green.
    red, green, blue = average[:, None] * (1 - alpha) + alpha * colour if has_alpha else colour
    channels = {
        "l": ((red + green + blue) / 3).reshape(height, width),
        "p": ((red + green) / 2 - blue).reshape(height, width),
        "q": (red - green).reshape(height, width),
        "a": alpha.reshape(height, width),
    }
    l_dc, l_ac, l_scale = _encode_channel(channels["l"], max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel(channels["p"], 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(channels["q"], 3, 3)
    is_landscape = width > height
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if is_landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(is_landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    factors = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(channels["a"], 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        factors.append(a_ac)
    nibbles = [_round(15 * factor) for ac in factors for factor in ac]
    nibbles += [0] * (len(nibbles) % 2)
    out += [low | (high << 4) for low, high in zip(nibbles[::2], nibbles[1::2], strict=True)]
    return bytes(out)


def _encode_channel(channel: NDArray[np.float64], nx: int, ny: int) -> tuple[float, list[float], float]:
    """DCT terms in the reference order (rows of cy, then cx within the triangle), AC normalised to 0..1."""
    height, width = channel.shape
    terms = [(cx, cy) for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]
    coefficients = _cosines(ny, height) @ channel @ _cosines(nx, width).T / (width * height)  # [cy, cx]
    values = [float(coefficients[cy, cx]) for cx, cy in terms]
    dc, ac = values[0], values[1:]
    scale = max((abs(value) for value in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * value for value in ac]
    return dc, ac, scale


@functools.cache
def _cosines(terms: int, size: int) -> NDArray[np.float64]:
    """The DCT basis of one axis; at most 8 x 100 sizes occur, so kept rather than recomputed per hash."""
    basis = np.cos(np.pi / size * np.outer(np.arange(terms), np.arange(size) + 0.5))
    basis.flags.writeable = False
    return basis


def _round(value: float) -> int:
    """JavaScript's Math.round (half up), as in the reference encoder."""
    return math.floor(value + 0.5)
