from __future__ import annotations

import pytest
from imaging_support import encode, textured
from pixport.imaging import sniff
from pixport.imaging.sniff import looks_like_polyglot

SMALL = textured(16, 12)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp")],
)
def test_raster_formats_by_magic_bytes(fmt: str, expected: str) -> None:
    assert sniff(encode(SMALL, fmt)) == expected


@pytest.mark.parametrize(
    "document",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- licence -->\n<svg width="1"></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>',
        b'<!DOCTYPE svg [<!ENTITY a "b>c">]><svg>&a;</svg>',  # sniffed; analyse refuses it later
        b"  \n<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>",
        '<svg xmlns="http://www.w3.org/2000/svg"/>'.encode("utf-16"),
    ],
)
def test_svg_by_its_root_element(document: bytes) -> None:
    assert sniff(document) == "svg"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world",
        b"<html><body><svg></svg></body></html>",
        b"<svgfoo/>",
        b"<!-- unterminated <svg>",
        b"%PDF-1.7",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x01\x00",  # ICO: Pillow reads it, pixport does not accept it
        b"BM" + b"\x00" * 60,  # BMP likewise
    ],
)
def test_everything_else_is_not_an_image(data: bytes) -> None:
    assert sniff(data) is None


def test_file_names_and_extensions_play_no_part() -> None:
    # A PNG is a PNG whatever it is called: sniff() sees only bytes.
    assert sniff(encode(SMALL, "PNG")) == "png"


def test_polyglot_markup_near_the_start_is_noticed() -> None:
    gif = encode(SMALL, "GIF")
    assert not looks_like_polyglot(gif)
    assert looks_like_polyglot(gif[:10] + b"<script>alert(1)</script>" + gif[10:])
    assert looks_like_polyglot(b"GIF89a<HTML><body>")
