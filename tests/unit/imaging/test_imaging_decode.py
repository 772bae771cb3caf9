from __future__ import annotations

import io

import numpy as np
import pytest
from imaging_support import encode, textured
from PIL import Image, ImageCms
from pixport.imaging import Limits
from pixport.imaging.decode import Decoded, decode, decode_scale, upright_size


@pytest.fixture(autouse=True)
def default_pixel_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    # analyse() sets Pillow's process-wide guard per call; these tests open images directly.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Limits().max_pixels)


def decoded(data: bytes, orientation: int = 1) -> Decoded:
    with Image.open(io.BytesIO(data)) as im:
        result = decode(im, orientation)
        result.image.load()
        return Decoded(
            result.image.copy(),
            result.width,
            result.height,
            result.has_alpha,
            result.source_grayscale,
            result.icc_profile,
        )


def test_draft_decodes_a_12mp_jpeg_at_half_size() -> None:
    data = encode(Image.new("RGB", (4000, 3000), (90, 120, 200)), "JPEG", quality=70)
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (2000, 2000))  # a square box on a 4:3 photo: both sides must fit, so no reduction
        assert im.size == (4000, 3000)
    with Image.open(io.BytesIO(data)) as im:
        result = decode(im, 1)
        assert im.size == (2000, 1500)  # the box in the image's own aspect took effect
        assert result.image.size == (2000, 1500)
        assert (result.width, result.height) == (4000, 3000)  # the original's size is still reported


def test_draft_box_keeps_every_rendition_from_upscaling() -> None:
    assert decode_scale(4000, 3000) == 0.5
    assert decode_scale(1000, 10_000) == pytest.approx(0.3)  # fill100 needs 300 px of width
    assert decode_scale(10_000, 250) == pytest.approx(0.8)  # large needs 200 px of height
    assert decode_scale(640, 480) == 1.0


def test_upright_size_swaps_for_quarter_turns() -> None:
    assert upright_size((1200, 800), 6) == (800, 1200)
    assert upright_size((1200, 800), 8) == (800, 1200)
    assert upright_size((1200, 800), 3) == (1200, 800)


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red ink
    result = decoded(data)
    assert result.image.mode == "RGB"
    red, green, blue = result.image.getpixel((16, 16))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_gray_png_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 0x4000, 0x8000, 0xFFFF]], dtype=np.uint16).repeat(4, axis=0)
    data = encode(Image.fromarray(levels), "PNG")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode.startswith("I")
    result = decoded(data)
    assert result.image.mode == "L"
    assert [result.image.getpixel((x, 0)) for x in range(4)] == [0, 64, 128, 255]
    assert result.source_grayscale


def test_palette_with_transparency_becomes_rgba() -> None:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.paste(0, (0, 0, 4, 8))
    result = decoded(encode(image, "PNG", transparency=0))
    assert result.image.mode == "RGBA"
    assert result.has_alpha
    assert result.image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert result.image.getpixel((7, 0)) == (0, 0, 255, 255)


def test_la_becomes_rgba() -> None:
    image = Image.new("LA", (8, 8), (100, 50))
    result = decoded(encode(image, "PNG"))
    assert result.image.mode == "RGBA"
    assert result.has_alpha and result.source_grayscale


def test_rgba_that_is_fully_opaque_is_treated_as_opaque() -> None:
    result = decoded(encode(textured(16, 16, mode="RGBA"), "PNG"))
    assert result.image.mode == "RGB"
    assert not result.has_alpha


def test_bilevel_becomes_gray() -> None:
    result = decoded(encode(Image.new("1", (8, 8), 1), "PNG"))
    assert result.image.mode == "L"
    assert result.source_grayscale


def test_matching_icc_profile_is_kept_for_the_renditions() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert decoded(encode(textured(16, 16), "JPEG", icc_profile=srgb)).icc_profile == srgb
    # An RGB profile on pixels that end up gray does not describe them: dropped.
    assert decoded(encode(Image.new("L", (8, 8), 9), "PNG", icc_profile=srgb)).icc_profile is None


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_is_applied_to_the_pixels(orientation: int) -> None:
    stored = Image.new("RGB", (30, 20), "white")
    result = decoded(encode(stored, "PNG"), orientation)
    expected = (20, 30) if orientation in (6, 8) else (30, 20)
    assert result.image.size == expected
    assert (result.width, result.height) == expected
