from __future__ import annotations

import json
from multiprocessing import Pipe

import pytest
from imaging_support import encode, exif_with, textured
from pixport.imaging import Limits, analyse
from pixport.imaging.wire import read_reply, send_reply


def test_an_analysis_crosses_the_pipe_intact() -> None:
    exif = exif_with(
        exif_ifd={0x9003: "2018:01:01 08:00:00", 0x9011: "+02:00"},
        gps={1: "S", 2: (33.0, 51.0, 54.0), 3: "E", 4: (151.0, 12.0, 40.0)},
    )
    result = analyse(encode(textured(320, 240), "JPEG", exif=exif), Limits())
    assert result.taken_at is not None and result.gps is not None
    parent, child = Pipe()
    send_reply(child, "ok", result)
    assert read_reply(parent, 64 * 1024 * 1024) == ("ok", result)


def test_a_rejection_crosses_the_pipe() -> None:
    parent, child = Pipe()
    send_reply(child, "rejected", "image processing ran out of memory")
    assert read_reply(parent, 1024) == ("rejected", "image processing ran out of memory")


@pytest.mark.parametrize(
    "header",
    [
        b"\x80\x04\x95 not json: a pickle, say",
        json.dumps({"kind": 1, "reason": "x"}).encode(),
        json.dumps({"kind": "ok", "analysis": {"format": "jpeg"}}).encode(),
        json.dumps({"kind": "ok", "analysis": []}).encode(),
    ],
)
def test_anything_else_is_refused_without_unpickling(header: bytes) -> None:
    parent, child = Pipe()
    child.send_bytes(header)
    child.send_bytes(b"original")
    with pytest.raises(ValueError):
        read_reply(parent, 1024)


def test_oversized_frames_are_refused() -> None:
    result = analyse(encode(textured(64, 48), "PNG"), Limits())
    parent, child = Pipe()
    send_reply(child, "ok", result)
    with pytest.raises(OSError):
        read_reply(parent, 100)
