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


def test_the_original_is_not_sent_back_when_it_is_what_the_parent_sent() -> None:
    data = encode(textured(64, 48), "PNG")
    result = analyse(data, Limits())
    parent, child = Pipe()
    send_reply(child, "ok", result, sent=data)
    frames = 0
    header = json.loads(parent.recv_bytes())
    assert header["original"] == "sent"
    while parent.poll(0.1):
        parent.recv_bytes()
        frames += 1
    assert frames == len(result.renditions)  # renditions only: the original stayed with the parent


def test_the_reused_original_round_trips() -> None:
    data = encode(textured(64, 48), "PNG")
    result = analyse(data, Limits())
    parent, child = Pipe()
    send_reply(child, "ok", result, sent=data)
    assert read_reply(parent, 64 * 1024 * 1024, data) == ("ok", result)


def test_a_reply_naming_unsent_bytes_is_refused() -> None:
    data = encode(textured(64, 48), "PNG")
    parent, child = Pipe()
    send_reply(child, "ok", analyse(data, Limits()), sent=data)
    with pytest.raises(ValueError):
        read_reply(parent, 64 * 1024 * 1024)
