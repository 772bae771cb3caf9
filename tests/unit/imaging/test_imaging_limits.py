from __future__ import annotations

import time

import pytest
from imaging_support import encode, gif, png_claiming, textured
from PIL import Image
from pixport.imaging import ImageRejected, Limits, analyse
from pixport.imaging.limits import check_byte_size, count_frames, open_image


def rejection(data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(ImageRejected) as caught:
        analyse(data, limits or Limits())
    return caught.value.reason


def test_too_many_bytes_is_refused_before_anything_else() -> None:
    reason = rejection(b"\xff\xd8\xff" + b"\x00" * 2000, Limits(max_bytes=1000))
    assert reason == "file too large: 2003 bytes, the limit is 1000 bytes"


def test_empty_file() -> None:
    with pytest.raises(ImageRejected, match="empty"):
        check_byte_size(b"", Limits())


def test_decompression_bomb_png_header_is_refused_without_decoding() -> None:
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 100
    started = time.perf_counter()
    reason = rejection(bomb)
    assert "decompression bomb" in reason
    assert time.perf_counter() - started < 0.5


def test_tiny_file_with_huge_dimensions_just_over_the_limit() -> None:
    # 8000x8000 = 64 MP: over the 50 MP limit but under Pillow's 2x hard bomb threshold.
    reason = rejection(png_claiming(8000, 8000))
    assert "too large" in reason
    assert "50000000" in reason


def test_pixel_limit_uses_the_header_size() -> None:
    data = encode(textured(40, 40), "PNG")
    with open_image(data, "png", Limits(max_pixels=1600)) as im:
        assert im.size == (40, 40)
    reason = rejection(data, Limits(max_pixels=1599))
    assert reason.startswith("image dimensions too large: 40x40 is 1600 pixels")


def test_pillow_global_guard_is_set_deliberately() -> None:
    with open_image(encode(textured(8, 8), "PNG"), "png", Limits(max_pixels=12345)):
        assert Image.MAX_IMAGE_PIXELS == 12345


def test_too_many_frames() -> None:
    frames = [Image.new("P", (4, 4), index % 2) for index in range(6)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 255, 255])
    data = gif(frames, disposal=2)
    assert analyse(data, Limits(max_frames=6)).frame_count == 6
    assert rejection(data, Limits(max_frames=5)) == "too many frames: more than 5 in an animation"


def test_frame_count_stops_at_the_limit_instead_of_walking_the_file() -> None:
    frames = [Image.new("P", (1, 1), index % 2) for index in range(2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 255, 255])
    two = gif(frames)
    first = two.index(b"!\xf9")
    second = two.index(b"!\xf9", first + 1)
    many = two[:first] + two[first:second] * 200_000 + b";"
    with open_image(many, "gif", Limits()) as im:
        started = time.perf_counter()
        with pytest.raises(ImageRejected, match="too many frames"):
            count_frames(im, Limits(max_frames=100))
        assert time.perf_counter() - started < 0.1


def test_truncated_jpeg() -> None:
    data = encode(textured(200, 150), "JPEG", quality=90)
    reason = rejection(data[: len(data) // 2])
    assert reason == "truncated or corrupt image: the file could not be decoded"


def test_truncated_png() -> None:
    data = encode(textured(200, 150), "PNG")
    assert "truncated or corrupt" in rejection(data[: len(data) * 2 // 3])


def test_garbage_after_magic_bytes() -> None:
    assert "truncated or corrupt" in rejection(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert "truncated or corrupt" in rejection(b"GIF89a" + b"\xff" * 50)
