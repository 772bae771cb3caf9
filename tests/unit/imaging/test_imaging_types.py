from __future__ import annotations

import dataclasses
import pickle

import pytest
from pixport.imaging import Color, ImageRejected, Limits, Rendition


def test_limit_defaults() -> None:
    limits = Limits()
    assert (limits.max_pixels, limits.max_bytes, limits.max_frames) == (50_000_000, 25 * 1024 * 1024, 100)
    assert (limits.timeout_seconds, limits.memory_bytes) == (60.0, 1536 * 1024 * 1024)


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Color(hex="#FFFFFF", percent=1.0).percent = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Rendition("mini", "image/jpeg", 100, 100, b"").data = b"x"  # type: ignore[misc]


def test_image_rejected_carries_its_reason() -> None:
    error = ImageRejected("not an image: the content is not PNG, JPEG, GIF, WebP or SVG")
    assert error.reason == str(error) == "not an image: the content is not PNG, JPEG, GIF, WebP or SVG"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert isinstance(copy, ImageRejected) and copy.reason == error.reason
