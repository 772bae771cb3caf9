"""What a pool child sends back: one message of a JSON header and raw byte frames, never a pickle.

A child decodes hostile files. Should a decoder bug ever hand one control of it, a pickle from that child
would run code in the server; JSON and bytes can at worst be wrong, and are checked here.

One message per reply (a 4-byte header length, the header, then the frames back to back), not one per
frame: the parent's pool thread reads it with two system calls instead of two per frame, and every call it
returns from has to win the GIL back from the worker's event loop while the child waits for its next image.
Renditions with the same bytes (a small original is its own fit2000, full and fill100) share one frame.

The original is sent back only when it differs from the bytes the parent sent (an SVG's sanitised
document): for rasters the header says `"original": "sent"` and the parent reuses its own copy, which saves
one copy of every image through the pipe and the parent's memory. A subverted child claiming "sent" for an
SVG gains nothing it could not get by sending those bytes itself.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from pixport.imaging.types import Analysis, Color, Rendition

MAX_HEADER_BYTES = 4 * 1024 * 1024
_MAX_RENDITIONS = 16
_LENGTH = struct.Struct(">I")
T = TypeVar("T")


def send_reply(conn: Connection, kind: str, payload: Analysis | str, sent: bytes | None = None) -> None:
    """`sent`: the bytes the parent sent for this image (not sent back if they are the original)."""
    if not isinstance(payload, Analysis):
        conn.send_bytes(_message({"kind": kind, "reason": payload}, []))
        return
    frames: list[bytes] = []
    index_of: dict[int, int] = {}  # id() of a frame's bytes -> its index: identical renditions share it

    def frame(data: bytes) -> int:
        if id(data) not in index_of:
            index_of[id(data)] = len(frames)
            frames.append(data)
        return index_of[id(data)]

    original: str | int = "sent" if sent is not None and payload.original is sent else frame(payload.original)
    header = {
        "kind": kind,
        "analysis": _header(payload, [frame(rendition.data) for rendition in payload.renditions]),
        "original": original,
        "frames": [len(data) for data in frames],
    }
    conn.send_bytes(_message(header, frames))


def _message(header: dict[str, Any], frames: list[bytes]) -> bytes:
    encoded = json.dumps(header).encode()
    return b"".join([_LENGTH.pack(len(encoded)), encoded, *frames])


def read_reply(conn: Connection, max_blob_bytes: int, sent: bytes | None = None) -> tuple[str, Analysis | str]:
    """Raises EOFError/OSError when the child is gone (or its message is longer than a reply can be),
    ValueError when what it sent is not a valid reply.

    `sent`: the bytes sent to the child for this image, the original when the reply says so."""
    message = conn.recv_bytes(MAX_HEADER_BYTES + (_MAX_RENDITIONS + 1) * max_blob_bytes)
    header, frames = _split(message, max_blob_bytes)
    kind = _of(header, "kind", str)
    if "analysis" not in header:
        return kind, _of(header, "reason", str)
    fields = _of(header, "analysis", dict)
    if header.get("original") == "sent":
        if sent is None:
            raise ValueError("reply refers to bytes that were not sent")
        original = sent
    else:
        original = _frame(frames, header.get("original"))
    specs = _of(fields, "renditions", list)[:_MAX_RENDITIONS]
    renditions = tuple(
        Rendition(
            name=_of(spec, "name", str),
            mime_type=_of(spec, "mime_type", str),
            width=_of(spec, "width", int),
            height=_of(spec, "height", int),
            data=_frame(frames, spec.get("frame")),
        )
        for spec in specs
    )
    return kind, _analysis(fields, original, renditions)


def _split(message: bytes, max_blob_bytes: int) -> tuple[dict[str, Any], list[bytes]]:
    """The header and the frames of one message, each frame checked against the size a blob may have."""
    if len(message) < _LENGTH.size:
        raise ValueError("reply is shorter than its header length")
    (header_length,) = _LENGTH.unpack_from(message)
    body = _LENGTH.size + header_length
    if header_length > MAX_HEADER_BYTES or body > len(message):
        raise ValueError("reply header length is out of range")
    try:
        header = json.loads(message[_LENGTH.size:body])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError("reply header is not JSON") from error
    if not isinstance(header, dict):
        raise ValueError("reply header is not an object")
    lengths = header.get("frames", [])
    if not (isinstance(lengths, list) and len(lengths) <= _MAX_RENDITIONS + 1
            and all(type(length) is int and 0 <= length <= max_blob_bytes for length in lengths)):
        raise ValueError("reply frame lengths are malformed or too large")
    if body + sum(lengths) != len(message):
        raise ValueError("reply frames do not add up to the message")
    frames = []
    for length in lengths:
        frames.append(message[body:body + length])
        body += length
    return header, frames


def _frame(frames: list[bytes], index: object) -> bytes:
    if type(index) is not int or not 0 <= index < len(frames):
        raise ValueError("reply refers to a frame it does not have")
    return frames[index]


def _header(analysis: Analysis, frames: list[int]) -> dict[str, Any]:
    return {
        "format": analysis.format,
        "mime_type": analysis.mime_type,
        "width": analysis.width,
        "height": analysis.height,
        "byte_size": analysis.byte_size,
        "sha256": analysis.sha256,
        "exif": analysis.exif,
        "taken_at": analysis.taken_at.isoformat() if analysis.taken_at else None,
        "gps": list(analysis.gps) if analysis.gps else None,
        "frame_count": analysis.frame_count,
        "has_alpha": analysis.has_alpha,
        "is_grayscale": analysis.is_grayscale,
        "phash": analysis.phash,
        "colors": [[color.hex, color.percent] for color in analysis.colors],
        "placeholder": analysis.placeholder,
        "renditions": [
            {"name": r.name, "mime_type": r.mime_type, "width": r.width, "height": r.height, "frame": frame}
            for r, frame in zip(analysis.renditions, frames, strict=True)
        ],
    }


def _analysis(fields: dict[str, Any], original: bytes, renditions: tuple[Rendition, ...]) -> Analysis:
    taken_at = _optional(fields, "taken_at", str)
    gps = _optional(fields, "gps", list)
    if gps is not None and (len(gps) != 2 or not all(isinstance(v, int | float) for v in gps)):
        raise ValueError("gps is not a pair of numbers")
    colors = []
    for entry in _of(fields, "colors", list):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError("malformed colour")
        colors.append(Color(hex=entry[0], percent=float(entry[1])))
    return Analysis(
        format=_of(fields, "format", str),
        mime_type=_of(fields, "mime_type", str),
        width=_of(fields, "width", int),
        height=_of(fields, "height", int),
        byte_size=_of(fields, "byte_size", int),
        sha256=_of(fields, "sha256", str),
        original=original,
        exif=_of(fields, "exif", dict),
        taken_at=datetime.fromisoformat(taken_at) if taken_at else None,
        gps=(float(gps[0]), float(gps[1])) if gps else None,
        frame_count=_of(fields, "frame_count", int),
        has_alpha=_of(fields, "has_alpha", bool),
        is_grayscale=_of(fields, "is_grayscale", bool),
        phash=_optional(fields, "phash", str),
        colors=tuple(colors),
        placeholder=_optional(fields, "placeholder", str),
        renditions=renditions,
    )


def _of(fields: Any, name: str, kind: type[T]) -> T:
    value = fields.get(name) if isinstance(fields, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"reply field {name!r} is not a {kind.__name__}")
    return value


def _optional(fields: dict[str, Any], name: str, kind: type[T]) -> T | None:
    return None if fields.get(name) is None else _of(fields, name, kind)
