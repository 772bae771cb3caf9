from __future__ import annotations

import io
import re

from imaging_support import BLUE, RED, encode, half_red_half_blue, textured
from PIL import Image, ImageDraw
from pixport.imaging.colors import dominant_colors, is_grayscale, sample


def distance(hex_code: str, rgb: tuple[int, int, int]) -> int:
    values = [int(hex_code[i : i + 2], 16) for i in (1, 3, 5)]
    return max(abs(a - b) for a, b in zip(values, rgb, strict=True))


def test_half_red_half_blue_is_fifty_fifty() -> None:
    colors = dominant_colors(sample(half_red_half_blue(200, 100)))
    # The two halves, plus at most a sliver of blended edge pixels from the downscaled sample.
    assert all(abs(color.percent - 50) <= 2.5 for color in colors[:2])
    assert sum(color.percent for color in colors[2:]) <= 5
    by_hue = sorted(colors[:2], key=lambda color: color.hex)
    assert distance(by_hue[0].hex, BLUE) <= 8
    assert distance(by_hue[1].hex, RED) <= 8


def test_shape_of_the_result() -> None:
    colors = dominant_colors(sample(textured(300, 200)))
    assert 1 <= len(colors) <= 8
    assert all(re.fullmatch(r"#[0-9A-F]{6}", color.hex) for color in colors)
    assert [color.percent for color in colors] == sorted((color.percent for color in colors), reverse=True)
    assert sum(color.percent for color in colors) <= 100
    assert all(color.percent >= 1 and round(color.percent, 1) == color.percent for color in colors)


def test_specks_under_one_percent_are_dropped() -> None:
    image = Image.new("RGB", (64, 64), RED)
    ImageDraw.Draw(image).rectangle((0, 0, 3, 3), fill=BLUE)  # 16 / 4096 px = 0.4 %
    colors = dominant_colors(sample(image))
    assert len(colors) == 1
    assert colors[0].percent == 99.6  # shares stay shares of the whole picture


def test_transparent_pixels_do_not_count() -> None:
    image = Image.new("RGBA", (64, 64), (0, 255, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 31, 63), fill=(*RED, 255))
    colors = dominant_colors(sample(image))
    assert len(colors) == 1 and colors[0].percent == 100.0
    assert distance(colors[0].hex, RED) <= 8
    assert dominant_colors(sample(Image.new("RGBA", (8, 8), (0, 0, 0, 0)))) == ()


def test_grayscale_detection() -> None:
    gray_rgb = textured(64, 64).convert("L").convert("RGB")
    assert is_grayscale(sample(gray_rgb))
    reencoded = Image.open(io.BytesIO(encode(gray_rgb, "JPEG", quality=75)))
    assert is_grayscale(sample(reencoded))
    assert not is_grayscale(sample(textured(64, 64)))
    assert not is_grayscale(sample(half_red_half_blue()))
