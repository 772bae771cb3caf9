"""Hostile-image battery: one batch of bombs, broken files, polyglots, odd-but-valid rasters and active SVGs.

Odd but valid images succeed with the right size; bad ones fail with a sentence a person can act on (no
stack trace, no file contents); the batch finishes and the server stays healthy.

A JPEG with a ZIP appended is a valid JPEG (decoders stop at EOI, the first bytes contain no markup): it
is imported, its original is stored as sent and served as image/jpeg with `nosniff`, and every rendition is
re-encoded from the pixels, so the archive never reaches them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from support import hostile, images
from support.origin import Origin
from support.stack import Stack


@dataclass(frozen=True)
class Ok:
    width: int
    height: int
    mime: str


@dataclass(frozen=True)
class Fails:
    words: tuple[str, ...]  # any one of them in the reason (case-insensitive)


LEAKS = ("Traceback", 'File "', "root:x:0", "/etc/passwd", "<script", "alert(", "Error:", "Exception")


def _cases(tracker: Callable[[str], str]) -> dict[str, tuple[bytes, Ok | Fails]]:
    too_large = Fails(("too large", "decompression bomb"))
    corrupt = Fails(("corrupt", "truncated", "could not be decoded"))
    svg_refused = Fails(("entities", "DTD", "external"))
    return {
        "bomb-header": (hostile.png_bomb_header(), too_large),
        "bomb-real": (hostile.png_bomb_real(), too_large),
        "gif-huge-screen": (hostile.gif_huge_screen(), too_large),
        "jpeg-huge-dims": (hostile.jpeg_huge_dimensions(), too_large),
        "png-zero-width": (hostile.png_zero_width(), Fails(("corrupt", "no pixels"))),
        "truncated-jpeg": (hostile.truncated_jpeg(), corrupt),
        "png-bad-ihdr-crc": (hostile.png_bad_crc(b"IHDR"), corrupt),
        "gif-html-polyglot": (hostile.gif_html_polyglot(), Fails(("HTML", "script"))),
        "jpeg-php-polyglot": (hostile.jpeg_php_polyglot(), Fails(("HTML", "script"))),
        "jpeg-zip-polyglot": (hostile.jpeg_with_zip(120, 90), Ok(120, 90, "image/jpeg")),
        "gif-500-frames": (hostile.gif_many_frames(500), Fails(("too many frames",))),
        "cmyk-jpeg": (hostile.cmyk_jpeg(120, 80), Ok(120, 80, "image/jpeg")),
        "png-16bit-gray": (hostile.png_16bit(64, 48), Ok(64, 48, "image/png")),
        "png-16bit-rgb": (hostile.png_rgb_16bit(40, 30), Ok(40, 30, "image/png")),
        "png-palette-transparent": (hostile.palette_png_transparent(50, 40), Ok(50, 40, "image/png")),
        "exif-malformed-ifd": (hostile.exif_malformed_ifd(80, 60), Ok(80, 60, "image/jpeg")),
        "exif-gigantic-values": (hostile.exif_gigantic_values(80, 60), Ok(80, 60, "image/jpeg")),
        "webp": (hostile.webp(30, 20), Ok(30, 20, "image/webp")),
        "svg-active": (hostile.svg_active(tracker("")), Ok(200, 100, "image/svg+xml")),
        "svg-external-dtd": (hostile.svg_external_dtd(tracker("/evil.dtd")), Ok(12, 10, "image/svg+xml")),
        "svg-xxe-file": (hostile.svg_xxe("file:///etc/passwd"), svg_refused),
        "svg-xxe-http": (hostile.svg_xxe(tracker("/xxe")), svg_refused),
        "svg-billion-laughs": (hostile.billion_laughs(), svg_refused),
        "empty": (b"", Fails(("empty",))),
        "html": (b"<!doctype html><html><script>alert(1)</script></html>", Fails(("not an image",))),
    }


def _path(stack: Stack, url: str) -> str:
    return url.split(str(stack.http_port), 1)[1]


def _check_reason(name: str, item: dict[str, Any], expected: Fails) -> None:
    assert item["status"] == "failed", (name, item)
    reason = item["reason"]
    assert any(word.lower() in reason.lower() for word in expected.words), (name, reason)
    assert len(reason) < 300 and "\n" not in reason, (name, reason)
    assert not any(leak in reason for leak in LEAKS), (name, reason)
    assert "image" not in item, (name, item)


def test_hostile_image_batch(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    def tracker(path: str) -> str:
        return origin.url(f"/{unique}/tracker{path}")

    cases = _cases(tracker)
    spec = [
        {"url": origin.serve(f"/{unique}/{name}", data, Content_Type="image/png"), "id": name, "fileName": name}
        for name, (data, _) in cases.items()
    ]
    job = stack.wait_job(stack.import_batch(org["token"], spec, system="hostile"), org["token"], timeout=120)
    assert job["finished"] is True and job["state"] == "success"
    assert [item["externalId"] for item in job["images"]] == list(cases)
    text = json.dumps(job)
    assert "root:x:0" not in text and "Traceback" not in text

    by_id = {item["externalId"]: item for item in job["images"]}
    for name, (_, expected) in cases.items():
        item = by_id[name]
        if isinstance(expected, Fails):
            _check_reason(name, item, expected)
        else:
            assert item["status"] == "success", (name, item)
            image = item["image"]
            assert (image["width"], image["height"], image["mimeType"]) == (
                expected.width, expected.height, expected.mime), (name, image)

    # Nothing an SVG referenced was ever fetched (scripts, images, stylesheets, DTDs, entities).
    assert [r.path for r in origin.requests if r.path.startswith(f"/{unique}/tracker")] == []

    # The ZIP polyglot: stored as sent, served as a JPEG that must not be sniffed as anything else.
    zipped = stack.request("GET", _path(stack, by_id["jpeg-zip-polyglot"]["image"]["originalUrl"]))
    assert zipped.status == 200 and zipped.headers["content-type"] == "image/jpeg"
    assert zipped.headers["x-content-type-options"] == "nosniff"
    shown = stack.request("GET", _path(stack, by_id["jpeg-zip-polyglot"]["image"]["url"]))
    assert shown.status == 200 and b"PK\x03\x04" not in shown.body and b"<script" not in shown.body

    # The sanitised SVG: nothing active left, and served so that a browser would not run it anyway.
    svg = by_id["svg-active"]["image"]
    raster = stack.request("GET", _path(stack, svg["url"]))  # renditions are PNG rasters of the drawing
    assert raster.status == 200 and raster.headers["content-type"] == "image/png"
    assert raster.body.startswith(b"\x89PNG") and b"<script" not in raster.body
    for url in (svg["originalUrl"],):
        served = stack.request("GET", _path(stack, url))
        assert served.status == 200
        assert served.headers["content-type"] == "image/svg+xml"
        assert "sandbox" in served.headers["content-security-policy"]
        assert served.headers["x-content-type-options"] == "nosniff"
        body = served.body.decode().lower()
        for active in ("<script", "onload", "onclick", "onmouseover", "javascript:", "foreignobject", "<iframe",
                       "@import", "tracker", "evil.js"):
            assert active not in body, (active, body)
        assert "<rect" in body  # the drawing itself survives
    dtd_svg = stack.request("GET", _path(stack, by_id["svg-external-dtd"]["image"]["originalUrl"]))
    assert b"evil.dtd" not in dtd_svg.body and b"<!DOCTYPE" not in dtd_svg.body.upper()

    # The server is healthy and the next ordinary import works.
    assert stack.request("GET", "/ready").status == 200
    good = origin.serve(f"/{unique}/after.jpg", images.jpeg(321, 123, seed=77))
    after = stack.wait_job(stack.import_batch(org["token"], [{"url": good, "id": "after", "fileName": "after"}]),
                           org["token"])
    assert after["state"] == "success"
    assert (after["images"][0]["image"]["width"], after["images"][0]["image"]["height"]) == (321, 123)


def test_png_with_corrupt_idat_crc_fails(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/idat-crc.png", hostile.png_bad_crc(b"IDAT"))
    job = stack.wait_job(stack.import_batch(org["token"], [{"url": url, "id": "crc", "fileName": "crc"}]),
                         org["token"])
    _check_reason("png-bad-idat-crc", job["images"][0], Fails(("corrupt", "checksum", "CRC")))
