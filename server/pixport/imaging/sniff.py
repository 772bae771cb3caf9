"""Recognise an image format from content alone; file names and declared types are never trusted."""

from __future__ import annotations

import re

_RASTER_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
# Enough for an XML declaration, a licence comment and a DOCTYPE; the full parse comes later.
_SVG_PROLOG_LIMIT = 256 * 1024
_SVG_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]")
_POLYGLOT = re.compile(rb"<(?:html|script|body|head|iframe|!doctype\s+html)|<\?php", re.IGNORECASE)
_POLYGLOT_WINDOW = 1024


def sniff(data: bytes) -> str | None:
    """Return "jpeg", "png", "gif", "webp" or "svg" by magic bytes / content, else None."""
    for magic, name in _RASTER_MAGIC:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if _looks_like_svg(data[:_SVG_PROLOG_LIMIT]):
        return "svg"
    return None


def looks_like_polyglot(data: bytes) -> bool:
    """A raster file whose first bytes also read as HTML or script: a browser could be talked into running it.

    Only the start is checked (that is where content sniffers look); the server must still send the stored
    original with its own Content-Type and `X-Content-Type-Options: nosniff`.
    """
    return _POLYGLOT.search(data[:_POLYGLOT_WINDOW]) is not None


def _decode_prefix(prefix: bytes) -> str:
    if prefix.startswith((b"\xff\xfe", b"\xfe\xff")):
        return prefix.decode("utf-16", errors="replace").lstrip("\ufeff")
    return prefix.decode("utf-8", errors="replace").lstrip("\ufeff")


def _looks_like_svg(prefix: bytes) -> bool:
    text = _decode_prefix(prefix)
    pos = _skip_prolog(text)
    return pos is not None and _SVG_ROOT.match(text, pos) is not None


def _skip_prolog(text: str) -> int | None:
    """Index of the root element's `<`, past the XML declaration, comments, PIs and a DOCTYPE."""
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            if end < 0:
                return None
            pos = end + 3
        elif text.startswith("<?", pos):
            end = text.find("?>", pos + 2)
            if end < 0:
                return None
            pos = end + 2
        elif text[pos : pos + 9].upper() == "<!DOCTYPE":
            doctype_end = _doctype_end(text, pos + 9)
            if doctype_end is None:
                return None
            pos = doctype_end
        else:
            return pos


def _doctype_end(text: str, pos: int) -> int | None:
    depth = 0
    quote = ""
    for index in range(pos, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == ">" and depth <= 0:
            return index + 1
    return None
