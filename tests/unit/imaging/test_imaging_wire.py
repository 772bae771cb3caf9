from __future__ import annotations

import contextlib
import json
import struct
import threading
from multiprocessing import Pipe

import pytest
from imaging_support import encode, exif_with, textured
from pixport.imaging import Limits, analyse
from pixport.imaging.wire import read_reply, send_reply


def framed(header: bytes, *frames: bytes) -> bytes:
    return struct.pack(">I", len(header)) + header + b"".join(frames)


def header_of(message: bytes) -> dict[str, object]:
    (length,) = struct.unpack_from(">I", message)
    header: dict[str, object] = json.loads(message[4:4 + length])
    return header


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


def _analysis_header() -> dict[str, object]:
    data = encode(textured(64, 48), "PNG")
    parent, child = Pipe()
    send_reply(child, "ok", analyse(data, Limits()))
    return header_of(parent.recv_bytes())


@pytest.mark.parametrize(
    "message",
    [
        b"\x80\x04\x95 not json: a pickle, say",
        framed(b"\x80\x04\x95 a pickle behind a valid length"),
        framed(json.dumps({"kind": 1, "reason": "x"}).encode()),
        framed(json.dumps({"kind": "ok", "analysis": {"format": "jpeg"}}).encode()),
        framed(json.dumps({"kind": "ok", "analysis": []}).encode()),
        framed(json.dumps(["a", "list"]).encode()),
        framed(json.dumps({"kind": "ok", "reason": "x", "frames": [5]}).encode(), b"four"),  # frames short
        framed(json.dumps({"kind": "ok", "reason": "x", "frames": [-1]}).encode()),
        framed(json.dumps({"kind": "ok", "reason": "x", "frames": [True]}).encode(), b"x"),
        b"\x00\x00\x01",  # shorter than a length
        struct.pack(">I", 1000) + b"{}",  # a header longer than the message
    ],
)
def test_anything_else_is_refused_without_unpickling(message: bytes) -> None:
    parent, child = Pipe()
    child.send_bytes(message)
    with pytest.raises(ValueError):
        read_reply(parent, 1024)


@pytest.mark.parametrize("frame", [-1, 99, "0", None, 0.0])
def test_a_rendition_naming_a_frame_the_reply_lacks_is_refused(frame: object) -> None:
    header = _analysis_header()
    analysis = header["analysis"]
    assert isinstance(analysis, dict)
    analysis["renditions"][0]["frame"] = frame
    frames = header["frames"]
    assert isinstance(frames, list)
    parent, child = Pipe()
    child.send_bytes(framed(json.dumps(header).encode(), *(b"x" * length for length in frames)))
    with pytest.raises(ValueError):
        read_reply(parent, 64 * 1024 * 1024)


def test_oversized_frames_are_refused() -> None:
    result = analyse(encode(textured(64, 48), "PNG"), Limits())
    parent, child = Pipe()
    send_reply(child, "ok", result)
    with pytest.raises(ValueError):
        read_reply(parent, 100)


def test_a_message_longer_than_any_reply_is_refused_before_it_is_read() -> None:
    parent, child = Pipe()
    def send() -> None:
        with contextlib.suppress(BrokenPipeError):  # the reader refused it and closed its end
            child.send_bytes(framed(b"{}", b"x" * (5 * 1024 * 1024)))

    sender = threading.Thread(target=send)
    sender.start()
    try:
        with pytest.raises(OSError):
            read_reply(parent, 10)  # at most the header's 4 MiB and 17 frames of 10 bytes
    finally:
        parent.close()  # the sender's write fails instead of waiting for a reader
        sender.join()


def test_identical_renditions_cross_the_pipe_once() -> None:
    result = analyse(encode(textured(300, 200), "PNG"), Limits())  # its own fit2000, full and fill100
    parent, child = Pipe()
    send_reply(child, "ok", result)
    message = parent.recv_bytes()
    header = header_of(message)
    distinct = {rendition.data for rendition in result.renditions}
    assert header["frames"] == [len(result.original), *(len(data) for data in dict.fromkeys(
        rendition.data for rendition in result.renditions))]
    assert len(distinct) < len(result.renditions)
    child.send_bytes(message)
    assert read_reply(parent, 64 * 1024 * 1024) == ("ok", result)


def test_the_original_is_not_sent_back_when_it_is_what_the_parent_sent() -> None:
    data = encode(textured(64, 48), "PNG")
    result = analyse(data, Limits())
    parent, child = Pipe()
    send_reply(child, "ok", result, sent=data)
    message = parent.recv_bytes()
    header = header_of(message)
    assert header["original"] == "sent"
    assert not parent.poll(0.1)  # one message per reply
    # renditions only: the original stayed with the parent
    assert header["frames"] == [len(data) for data in dict.fromkeys(r.data for r in result.renditions)]


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
