from __future__ import annotations

import base64

import numpy as np
import pytest
from imaging_support import BLUE, RED, textured
from PIL import Image, ImageDraw
from pixport.imaging.placeholder import rgba_to_thumbhash, thumbhash


def average_color(hash_bytes: bytes) -> tuple[int, int, int]:
    """The DC terms of a ThumbHash back to sRGB (the decoder's first step)."""
    header = hash_bytes[0] | hash_bytes[1] << 8 | hash_bytes[2] << 16
    luminance = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    blue = luminance - 2 / 3 * p
    red = (3 * luminance - blue + q) / 2
    green = red - q
    return tuple(round(255 * min(1.0, max(0.0, value))) for value in (red, green, blue))  # type: ignore[return-value]


def flags(hash_bytes: bytes) -> tuple[bool, bool]:
    """(has_alpha, is_landscape)"""
    return bool(hash_bytes[2] & 0x80), bool(hash_bytes[4] & 0x80)


def test_known_hash_of_a_reference_image() -> None:
    # Computed with the reference encoder (thumbhash-python 1.0.1) for the same pixels.
    image = textured(100, 75, seed=4).convert("RGBA")
    assert rgba_to_thumbhash(np.asarray(image)).hex() == REFERENCE_100x75_SEED4


def test_average_colour_and_flags() -> None:
    red = base64.b64decode(thumbhash(Image.new("RGB", (300, 200), RED)))
    assert max(abs(a - b) for a, b in zip(average_color(red), RED, strict=True)) <= 12
    assert flags(red) == (False, True)
    blue = base64.b64decode(thumbhash(Image.new("RGB", (50, 80), BLUE)))
    assert max(abs(a - b) for a, b in zip(average_color(blue), BLUE, strict=True)) <= 12
    assert flags(blue) == (False, False)


def test_alpha_is_encoded() -> None:
    image = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((10, 10, 50, 50), fill=(*RED, 255))
    hashed = base64.b64decode(thumbhash(image))
    assert flags(hashed)[0]
    assert max(abs(a - b) for a, b in zip(average_color(hashed), RED, strict=True)) <= 12  # transparent ignored


@pytest.mark.parametrize("mode", ["LA", "P", "RGBA"])
def test_alpha_of_every_mode_that_carries_one_is_encoded(mode: str) -> None:
    image = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((10, 10, 50, 50), fill=(*RED, 255))
    converted = image.convert(mode) if mode != "P" else image.convert("P", palette=Image.Palette.ADAPTIVE)
    if mode == "P":  # a palette entry marked transparent, as in a GIF or an indexed PNG
        converted.info["transparency"] = converted.getpixel((0, 0))
    assert flags(base64.b64decode(thumbhash(converted)))[0]


def test_an_opaque_image_hashes_as_its_rgba_copy() -> None:
    # Opaque inputs are reduced without alpha (cheaper); the hash must be the one of the RGBA path.
    image = textured(300, 200, seed=7)
    rgba = image.convert("RGBA")
    rgba.thumbnail((100, 100), Image.Resampling.BILINEAR)
    assert thumbhash(image) == base64.b64encode(rgba_to_thumbhash(np.asarray(rgba))).decode("ascii")


def test_input_is_reduced_to_the_format_limit() -> None:
    assert len(base64.b64decode(thumbhash(textured(640, 480)))) <= 30
    assert thumbhash(Image.new("RGBA", (4, 4), (0, 0, 0, 0)))  # fully transparent: still a hash


REFERENCE_100x75_SEED4 = "dce8092d8469529802977875a8b96876965ff4ebec"
