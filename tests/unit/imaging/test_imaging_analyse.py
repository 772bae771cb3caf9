from __future__ import annotations

import hashlib
import io
import pickle
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imaging_support import BLUE, RED, color_at, encode, gif, is_reddish, textured
from PIL import Image
from pixport.imaging import Analysis, ImageRejected, Limits, analyse

# The package exports the function `analyse`, which shadows its module of the same name.
analyse_module = sys.modules["pixport.imaging.analyse"]


def rendition(result: Analysis, name: str) -> bytes:
    return next(r.data for r in result.renditions if r.name == name)


def test_jpeg_analysis() -> None:
    data = encode(textured(640, 480), "JPEG", quality=85)
    result = analyse(data, Limits())
    assert (result.format, result.mime_type) == ("jpeg", "image/jpeg")
    assert (result.width, result.height) == (640, 480)
    assert result.original == data
    assert result.byte_size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.frame_count == 1
    assert not result.has_alpha and not result.is_grayscale
    assert result.phash is not None and len(result.phash) == 16
    assert result.colors and result.placeholder
    assert result.exif == {} and result.taken_at is None and result.gps is None


def test_analysis_is_picklable() -> None:
    result = analyse(encode(textured(64, 48), "JPEG"), Limits())
    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301 - our own bytes


def test_rgba_png() -> None:
    image = Image.new("RGBA", (120, 80), (*RED, 255))
    image.paste((0, 0, 0, 0), (60, 0, 120, 80))
    result = analyse(encode(image, "PNG"), Limits())
    assert result.format == "png" and result.has_alpha
    assert all(r.mime_type == "image/webp" for r in result.renditions)
    assert len(result.colors) == 1 and result.colors[0].percent == 100.0


def test_palette_png_with_transparency() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([*RED, *BLUE])
    image.paste(1, (0, 0, 20, 40))
    result = analyse(encode(image, "PNG", transparency=1), Limits())
    assert result.has_alpha
    with Image.open(io.BytesIO(rendition(result, "full"))) as full:
        assert full.mode == "RGBA"
        assert full.getpixel((5, 5))[3] == 0  # type: ignore[index]
        opaque = full.getpixel((35, 5))
        assert isinstance(opaque, tuple) and opaque[3] == 255 and is_reddish(opaque)


def test_animated_gif_reports_frames_and_renders_the_first() -> None:
    frames = [Image.new("RGB", (60, 40), color) for color in (RED, BLUE, (0, 160, 0))]
    result = analyse(gif(frames), Limits())
    assert (result.format, result.frame_count) == ("gif", 3)
    assert is_reddish(color_at(rendition(result, "full"), (30, 20)))
    assert rendition(result, "full")[:3] == b"\xff\xd8\xff"


def test_cmyk_jpeg() -> None:
    result = analyse(encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95), Limits())
    with Image.open(io.BytesIO(rendition(result, "mini"))) as mini:
        assert mini.mode == "RGB"
        assert is_reddish(mini.getpixel((50, 50)))  # type: ignore[arg-type]


def test_16_bit_png() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    result = analyse(encode(Image.fromarray(ramp), "PNG"), Limits())
    assert result.is_grayscale
    with Image.open(io.BytesIO(rendition(result, "full"))) as full:
        assert full.mode == "L"
        assert full.getpixel((0, 32)) < 8 and full.getpixel((255, 32)) > 247  # type: ignore[operator]
        assert 110 < full.getpixel((128, 32)) < 145  # type: ignore[operator]


def test_gray_jpeg_stored_as_rgb_is_grayscale() -> None:
    gray = textured(200, 150).convert("L").convert("RGB")
    assert analyse(encode(gray, "JPEG", quality=80), Limits()).is_grayscale


def test_progressive_jpeg() -> None:
    data = encode(textured(900, 600), "JPEG", progressive=True, quality=80)
    result = analyse(data, Limits())
    assert (result.width, result.height) == (900, 600)
    assert len(result.renditions) == 5


@pytest.mark.parametrize("params", [{"quality": 80}, {"lossless": True}])
def test_webp(params: dict[str, object]) -> None:
    result = analyse(encode(textured(300, 200), "WEBP", **params), Limits())
    assert (result.format, result.mime_type) == ("webp", "image/webp")
    assert (result.width, result.height) == (300, 200)


def test_webp_with_alpha_and_animation() -> None:
    frames = [Image.new("RGBA", (50, 50), (*color, 128)) for color in (RED, BLUE)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    result = analyse(data, Limits())
    assert result.frame_count == 2 and result.has_alpha


@pytest.mark.parametrize("data", [b"hello", b"<html><script>alert(1)</script></html>", b"%PDF-1.4\n"])
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        analyse(data, Limits())
    assert caught.value.reason == "not an image: the content is not PNG, JPEG, GIF, WebP or SVG"


def test_polyglot_gif_is_refused() -> None:
    data = encode(textured(20, 20), "GIF")
    polyglot = data[:13] + b"<script>alert(document.cookie)</script>" + data[13:]
    with pytest.raises(ImageRejected, match="HTML or script"):
        analyse(polyglot, Limits())


def test_memory_error_becomes_a_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(analyse_module, "decode", exhausted)
    with pytest.raises(ImageRejected, match="ran out of memory"):
        analyse(encode(textured(20, 20), "PNG"), Limits())


def test_reasons_never_echo_content() -> None:
    secret = b"GIF89a" + b"TOP-SECRET-CONTENT" * 4
    with pytest.raises(ImageRejected) as caught:
        analyse(secret, Limits())
    assert "SECRET" not in caught.value.reason and "Traceback" not in caught.value.reason


SEEDS = {
    "jpeg": encode(textured(40, 30), "JPEG", quality=80),
    "png": encode(textured(40, 30, mode="RGBA"), "PNG"),
    "gif": gif([textured(20, 20, seed=1), textured(20, 20, seed=2)]),
    "webp": encode(textured(40, 30), "WEBP", quality=70),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=1)),
)
def test_damaged_files_are_analysed_or_rejected_never_crash(
    kind: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SEEDS[kind])
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: max(1, cut % len(data))]
    try:
        result = analyse(bytes(data), Limits(max_pixels=4_000_000))
    except ImageRejected as rejected:
        assert rejected.reason and "Traceback" not in rejected.reason
    else:
        assert len(result.renditions) == 5
