"""The image pipeline through Envoy's REST edge (issue "Image pipeline"): the full image record, every
rendition served upright and at its promised size, near-duplicates, and pixel limits."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from support import camera, images
from support.origin import Origin
from support.stack import Response, Stack

RENDITIONS = {"original", "mini", "large", "full", "fit2000", "fill100"}
RECORD_KEYS = {
    "mediaId", "width", "height", "mimeType", "format", "byteSize", "sha256", "exif", "takenAt", "gps", "phash",
    "colors", "placeholder", "frameCount", "renditions", "systemName", "externalId", "createdAt", "updatedAt",
}
PILLOW_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
SVG_CSP = "sandbox"


# --- helpers -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    token: str
    org: str


def new_tenant(stack: Stack) -> Tenant:
    name = f"pipeline-{uuid.uuid4().hex[:10]}"
    client = stack.create_client(name)
    return Tenant(stack.token(client["client_id"]), name)


def fetch(stack: Stack, url: str, token: str | None = None) -> Response:
    """GET an absolute URL pixport handed out; it must point at this stack's edge (loopback only)."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port == stack.http_port, url
    return stack.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), token=token)


def run_import(stack: Stack, token: str, items: list[dict[str, Any]], system: str = "pipeline") -> dict[str, Any]:
    return stack.wait_job(stack.import_batch(token, items, system=system), token)


def by_external_id(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["externalId"]: item for item in status["images"]}


def get_record(stack: Stack, token: str, media_id: str) -> dict[str, Any]:
    response = stack.request("GET", f"/api/v1/images/{media_id}", token=token)
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("application/json")
    record: dict[str, Any] = response.json()
    return record


def decode(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    scale = min(1.0, box / width, box / height)
    return round(width * scale), round(height * scale)


def assert_size(name: str, size: tuple[int, int], width: int, height: int) -> None:
    """The promised size of rendition `name` of an upright `width`x`height` image."""
    got_w, got_h = size
    if name == "mini":
        assert size == (100, 100), (name, size)
    elif name == "large":
        assert size == (200, 200), (name, size)
    elif name in ("full", "fit2000"):
        box = 1920 if name == "full" else 2000
        want_w, want_h = fit(width, height, box)
        assert max(got_w, got_h) <= box, (name, size)
        assert abs(got_w - want_w) <= 1 and abs(got_h - want_h) <= 1, (name, size, (want_w, want_h))
        assert got_w == want_w or got_h == want_h, (name, size, (want_w, want_h))  # the bounding side is exact
    elif name == "fill100":
        assert got_w == min(300, width), (name, size)
        assert abs(got_h - height * got_w / width) <= 1, (name, size)
    else:
        raise AssertionError(f"unexpected rendition {name}")


def assert_served(response: Response, url: str) -> None:
    assert response.status == 200, (url, response.status, response.body[:300])
    assert response.body, url
    assert response.headers.get("etag"), (url, response.headers)
    assert "immutable" in response.headers.get("cache-control", ""), (url, response.headers)
    assert not [name for name in response.headers if name.startswith("grpc-")], response.headers


def check_raster_renditions(stack: Stack, record: dict[str, Any]) -> dict[str, Image.Image]:
    """Every rendition URL serves decodable bytes of its declared type and promised size."""
    assert set(record["renditions"]) == RENDITIONS
    decoded: dict[str, Image.Image] = {}
    etags: dict[str, tuple[str, str]] = {}
    for name, url in record["renditions"].items():
        assert url.startswith(f"http://127.0.0.1:{stack.http_port}/api/v1/images/{record['mediaId']}/{name}")
        assert "?v=" in url, url
        response = fetch(stack, url)
        assert_served(response, url)
        image = decode(response.body)
        assert response.headers["content-type"] == PILLOW_MIME[str(image.format)], (name, response.headers)
        if name == "original":
            assert response.headers["content-type"] == record["mimeType"]
            assert hashlib.sha256(response.body).hexdigest() == record["sha256"]
            assert str(len(response.body)) == record["byteSize"]
        else:
            assert_size(name, image.size, record["width"], record["height"])
        decoded[name] = image
        etags[name] = (response.headers["etag"], hashlib.sha256(response.body).hexdigest())
    # Content-addressed validators: the same ETag exactly when the bytes are the same (full and fit2000 of a
    # small image may be one blob).
    assert len({etag for etag, _ in etags.values()}) == len(set(etags.values())), etags
    return decoded


def mean_rgb(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    pixel = image.convert("RGB").crop(box).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def is_marker(rgb: tuple[int, int, int]) -> bool:
    r, g, b = rgb
    return r > 170 and g < 90 and b < 90


def marker_corners(image: Image.Image) -> set[str]:
    """Which corners of a rendition show the red marker (sampled a little inside the corner)."""
    w, h = image.size
    qw, qh = w // 5, h // 5
    boxes = {
        "top-left": (2, 2, qw, qh),
        "top-right": (w - qw, 2, w - 2, qh),
        "bottom-left": (2, h - qh, qw, h - 2),
        "bottom-right": (w - qw, h - qh, w - 2, h - 2),
    }
    return {corner for corner, box in boxes.items() if is_marker(mean_rgb(image, box))}


def tiny_png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose IHDR claims width x height RGB pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * min(width, 64)) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def gif_frames(count: int, size: tuple[int, int], colors: list[tuple[int, int, int]]) -> bytes:
    frames = [Image.new("RGB", size, colors[i % len(colors)]).convert("P") for i in range(count)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0, optimize=False)
    return out.getvalue()


def many_frames_gif(count: int) -> bytes:
    """`count` tiny frames, each a different palette index so no two consecutive frames merge."""
    frames = [Image.new("P", (4, 4), i % 256) for i in range(count)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=20, loop=0, optimize=False)
    return out.getvalue()


def half_transparent_png(mode: str) -> bytes:
    """400x300: left half fully transparent, right half opaque blue; RGBA, or a palette with tRNS."""
    out = io.BytesIO()
    if mode == "RGBA":
        image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
        image.paste((20, 60, 220, 255), (200, 0, 400, 300))
        image.save(out, "PNG")
    else:
        image = Image.new("P", (400, 300), 0)
        image.putpalette([0, 0, 0, 20, 60, 220] + [0] * 762)
        image.paste(1, (200, 0, 400, 300))
        image.save(out, "PNG", transparency=0)
    return out.getvalue()


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


# --- the camera import, shared by the tests that read it ------------------------------------------------------

PARIS = camera.Camera()  # 48°51'24.0"N 2°21'03.0"E, orientation 6, 2018:01:01 08:00:00
SOUTH_WEST = camera.Camera(
    make="NIKON CORPORATION", model="NIKON D850", taken="2019:06:30 17:45:10", orientation=8,
    latitude=(33.0, 52.0, 4.0), latitude_ref="S", longitude=(151.0, 12.0, 36.0), longitude_ref="W",
)


@dataclass(frozen=True)
class CameraImport:
    tenant: Tenant
    status: dict[str, Any]
    originals: dict[str, bytes]
    records: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def camera_import(stack: Stack, origin: Origin) -> Iterator[CameraImport]:
    tenant = new_tenant(stack)
    tag = uuid.uuid4().hex[:8]
    originals = {
        # Stored 1200x800 landscape, shown upright 800x1200.
        "paris": camera.camera_jpeg(1200, 800, PARIS, seed=2),
        # Stored 3000x2000 with orientation 8 (the other rotation), shown 2000x3000: full and fit2000 shrink.
        "south-west": camera.camera_jpeg(3000, 2000, SOUTH_WEST, seed=5),
    }
    items = [
        {"url": origin.serve(f"/{tag}/{name}.jpg", data, Content_Type="image/jpeg"), "id": name, "fileName": name}
        for name, data in originals.items()
    ]
    status = run_import(stack, tenant.token, items)
    assert status["state"] == "success", status
    found = by_external_id(status)
    assert {item["status"] for item in found.values()} == {"success"}, status
    records = {name: get_record(stack, tenant.token, found[name]["image"]["mediaId"]) for name in originals}
    yield CameraImport(tenant, status, originals, records)


# --- 1. the record -------------------------------------------------------------------------------------------


def test_camera_jpeg_record_has_upright_size_exif_gps_and_fingerprints(camera_import: CameraImport) -> None:
    record = camera_import.records["paris"]
    original = camera_import.originals["paris"]
    item = by_external_id(camera_import.status)["paris"]
    assert set(record) >= RECORD_KEYS, RECORD_KEYS - set(record)

    assert record["mediaId"] == item["image"]["mediaId"]
    assert (record["width"], record["height"]) == (800, 1200)  # orientation 6 applied
    assert (item["image"]["width"], item["image"]["height"]) == (800, 1200)
    assert record["mimeType"] == "image/jpeg" and record["format"] == "jpeg"
    assert record["byteSize"] == str(len(original))  # int64: a JSON string
    assert record["sha256"] == hashlib.sha256(original).hexdigest()

    exif = record["exif"]
    assert exif["Make"] == "Canon" and exif["Model"] == "Canon EOS 5D Mark IV"
    assert exif["DateTimeOriginal"] == "2018:01:01 08:00:00"
    assert exif["LensModel"] == "EF50mm f/1.8 STM" and exif["ISOSpeedRatings"] == 200
    assert "MakerNote" not in exif  # binary values dropped
    assert all(not isinstance(key, str) or not key.isdigit() for key in exif)  # readable names, not tag numbers
    assert record["takenAt"] == "2018-01-01T08:00:00Z"
    assert round(record["gps"]["lat"], 4) == 48.8567
    assert round(record["gps"]["lng"], 4) == 2.3508

    assert re.fullmatch(r"[0-9a-f]{16}", record["phash"]), record["phash"]
    assert record["colors"], record
    for color in record["colors"]:
        assert re.fullmatch(r"#[0-9A-F]{6}", color["hex"]), color
        assert 0 < color["percent"] <= 100
    assert sum(color["percent"] for color in record["colors"]) <= 100.05
    assert isinstance(record["placeholder"], str) and len(base64.b64decode(record["placeholder"])) >= 5
    assert record["frameCount"] == 1
    assert record["hasAlpha"] is False and record["isGrayscale"] is False
    assert record["systemName"] == "pipeline" and record["externalId"] == "paris"
    assert RFC3339_UTC.match(record["createdAt"]) and RFC3339_UTC.match(record["updatedAt"])
    assert "duplicateOf" not in record
    assert set(record["renditions"]) == RENDITIONS
    for name, url in record["renditions"].items():
        assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/api/v1/images/{record['mediaId']}/{name}\?v=[0-9a-f]{{8,}}", url)


def test_gps_south_and_west_are_negative(camera_import: CameraImport) -> None:
    record = camera_import.records["south-west"]
    assert (record["width"], record["height"]) == (2000, 3000)  # orientation 8 applied
    assert round(record["gps"]["lat"], 4) == round(camera.decimal(SOUTH_WEST.latitude, "S"), 4) == -33.8678
    assert round(record["gps"]["lng"], 4) == round(camera.decimal(SOUTH_WEST.longitude, "W"), 4) == -151.21
    assert record["takenAt"] == "2019-06-30T17:45:10Z"
    assert record["exif"]["Make"] == "NIKON CORPORATION" and record["exif"]["Model"] == "NIKON D850"


# --- 2. renditions served through Envoy ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["paris", "south-west"])
def test_every_rendition_is_served_at_its_promised_size(stack: Stack, camera_import: CameraImport, name: str) -> None:
    record = camera_import.records[name]
    decoded = check_raster_renditions(stack, record)
    assert decoded["original"].size == ((3000, 2000) if name == "south-west" else (1200, 800))  # stored as is
    for rendition in ("mini", "large", "full", "fit2000", "fill100"):
        assert decoded[rendition].format == "JPEG", rendition  # opaque: JPEG
    if name == "south-west":
        assert decoded["full"].size == (1280, 1920)
        assert decoded["fit2000"].size == (1333, 2000)
    else:
        assert decoded["full"].size == decoded["fit2000"].size == (800, 1200)  # never upscaled
    assert decoded["fill100"].size == (300, 450)
    if name == "south-west":
        assert int(record["byteSize"]) > 3 * 256 * 1024  # an original served in several streamed chunks


def test_unversioned_rendition_url_is_not_immutable(stack: Stack, camera_import: CameraImport) -> None:
    url = camera_import.records["paris"]["renditions"]["large"].split("?", 1)[0]
    response = fetch(stack, url)
    assert response.status == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.headers.get("etag")
    assert "immutable" not in response.headers.get("cache-control", "")
    # A version that is not this content's must not be pinned in caches forever either.
    stale = fetch(stack, f"{url}?v=0123456789abcdef")
    assert stale.status == 200 and "immutable" not in stale.headers.get("cache-control", "")


def test_rendition_revalidates_with_etag(stack: Stack, camera_import: CameraImport) -> None:
    url = camera_import.records["paris"]["renditions"]["large"]
    etag = fetch(stack, url).headers["etag"]
    parts = urlsplit(url.split("?", 1)[0])  # the unversioned URL: max-age=60, must-revalidate
    again = stack.request("GET", parts.path, headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"", (again.status, len(again.body))
    assert again.headers.get("etag") == etag


def test_rendition_answers_head(stack: Stack, camera_import: CameraImport) -> None:
    url = urlsplit(camera_import.records["paris"]["renditions"]["large"])
    head = stack.request("HEAD", f"{url.path}?{url.query}")
    assert head.status == 200 and head.headers.get("content-type") == "image/jpeg", (head.status, head.headers)


@pytest.mark.parametrize(("name", "corner"), [("paris", "top-right"), ("south-west", "bottom-left")])
def test_derivatives_are_upright(stack: Stack, camera_import: CameraImport, name: str, corner: str) -> None:
    # The marker sits near the stored image's top-left corner; orientation 6 (rotate clockwise) carries it to
    # the top-right of the centred square, orientation 8 (anticlockwise) to its bottom-left.
    record = camera_import.records[name]
    for rendition in ("large", "mini"):
        image = decode(fetch(stack, record["renditions"][rendition]).body)
        assert image.width == image.height
        assert marker_corners(image) == {corner}, (rendition, marker_corners(image))
    # The whole upright picture: the marker is on the right edge (6) or the left edge (8), never at the top.
    full = decode(fetch(stack, record["renditions"]["full"]).body)
    assert full.height > full.width
    w, h = full.size
    x = int(w * 0.9) if corner == "top-right" else int(w * 0.1)
    y = int(h * (0.25 if corner == "top-right" else 0.75))
    assert is_marker(mean_rgb(full, (x - 3, y - 3, x + 3, y + 3))), mean_rgb(full, (x - 3, y - 3, x + 3, y + 3))


@pytest.mark.parametrize("mode", ["RGBA", "P"])
def test_png_with_alpha_keeps_it_in_renditions(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str, mode: str,
) -> None:
    data = half_transparent_png(mode)
    url = origin.serve(f"/{unique}/alpha.png", data, Content_Type="image/png")
    status = run_import(stack, org["token"], [{"url": url, "id": "alpha", "fileName": "alpha"}])
    [item] = status["images"]
    assert item["status"] == "success", item
    record = get_record(stack, org["token"], item["image"]["mediaId"])
    assert record["hasAlpha"] is True and record["mimeType"] == "image/png" and record["format"] == "png"
    assert (record["width"], record["height"]) == (400, 300) and record["frameCount"] == 1
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    decoded = check_raster_renditions(stack, record)
    assert fetch(stack, record["renditions"]["original"]).body == data
    for name in ("mini", "large", "full", "fit2000", "fill100"):
        image = decoded[name]
        assert image.format in ("WEBP", "PNG"), (name, image.format)
        rgba = image.convert("RGBA")
        assert "A" in image.getbands() or "transparency" in image.info, (name, image.mode)
        w, h = rgba.size
        left = rgba.getpixel((w // 10, h // 2))
        right = rgba.getpixel((w - 1 - w // 10, h // 2))
        assert isinstance(left, tuple) and isinstance(right, tuple)
        assert left[3] < 20, (name, left)  # transparent half stays transparent
        assert right[3] > 235 and right[2] > 180, (name, right)  # opaque blue half
    assert record["colors"] and all(int(c["hex"][5:7], 16) > 150 for c in record["colors"]), record["colors"]


def test_animated_gif_counts_frames_and_renders_the_first(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str,
) -> None:
    data = gif_frames(4, (160, 120), [(220, 30, 30), (30, 200, 30), (30, 30, 220)])
    url = origin.serve(f"/{unique}/anim.gif", data, Content_Type="image/gif")
    status = run_import(stack, org["token"], [{"url": url, "id": "anim", "fileName": "anim"}])
    [item] = status["images"]
    assert item["status"] == "success", item
    record = get_record(stack, org["token"], item["image"]["mediaId"])
    assert record["frameCount"] == 4
    assert record["mimeType"] == "image/gif" and record["format"] == "gif"
    assert (record["width"], record["height"]) == (160, 120)
    decoded = check_raster_renditions(stack, record)
    assert decoded["original"].format == "GIF" and getattr(decoded["original"], "n_frames", 1) == 4
    assert fetch(stack, record["renditions"]["original"]).body == data  # the animation itself is kept
    for name in ("mini", "large", "full", "fit2000", "fill100"):
        assert getattr(decoded[name], "n_frames", 1) == 1, name
        assert is_marker(mean_rgb(decoded[name], (0, 0, *decoded[name].size))), name  # the red first frame
    assert record["colors"][0]["hex"].startswith("#") and int(record["colors"][0]["hex"][1:3], 16) > 170


SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" height="80"
     onload="alert(1)">
  <script>alert(document.cookie)</script>
  <rect x="0" y="0" width="120" height="80" fill="#3366cc" onclick="alert(2)"/>
  <image xlink:href="http://127.0.0.1:9/tracker.png" width="10" height="10"/>
  <a xlink:href="javascript:alert(3)"><circle cx="60" cy="40" r="20" fill="#ffcc00"/></a>
  <style>@import url(http://127.0.0.1:9/evil.css); rect { stroke: #000 }</style>
  <ellipse cx="20" cy="20" rx="5" ry="3" style="fill: url(http://127.0.0.1:9/paint.svg#p)"/>
</svg>
"""
XXE_SVG = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&secret;</text></svg>
"""


# The 120x80 logo's renditions (fit sizes never upscale; squares are cut from the centre).
SVG_RENDITION_SIZES = {"fit2000": (120, 80), "full": (120, 80), "fill100": (120, 80), "large": (200, 200),
                       "mini": (100, 100)}


def test_svg_is_sanitised_and_served_sandboxed(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/logo.svg", SVG, Content_Type="image/svg+xml")
    xxe = origin.serve(f"/{unique}/xxe.svg", XXE_SVG, Content_Type="image/svg+xml")
    status = run_import(stack, org["token"], [
        {"url": url, "id": "logo", "fileName": "logo"}, {"url": xxe, "id": "xxe", "fileName": "xxe"},
    ])
    item, refused = by_external_id(status)["logo"], by_external_id(status)["xxe"]
    assert item["status"] == "success", item
    assert refused["status"] == "failed" and "entit" in refused["reason"].lower(), refused
    assert "root:" not in str(status)
    assert item["image"]["mimeType"] == "image/svg+xml"
    record = get_record(stack, org["token"], item["image"]["mediaId"])
    assert record["mimeType"] == "image/svg+xml" and record["format"] == "svg"
    assert (record["width"], record["height"]) == (120, 80)
    assert set(record["renditions"]) == RENDITIONS
    original = fetch(stack, record["renditions"]["original"])
    # Renditions are PNG rasters at their promised sizes; the original stays the sanitised SVG.
    for name, rendition_url in record["renditions"].items():
        if name == "original":
            continue
        response = fetch(stack, rendition_url)
        assert_served(response, rendition_url)
        assert response.headers["content-type"] == "image/png", (name, response.headers)
        with Image.open(io.BytesIO(response.body)) as raster:
            assert raster.format == "PNG" and raster.size == SVG_RENDITION_SIZES[name], (name, raster.size)
    for name, rendition_url in [("original", record["renditions"]["original"])]:
        response = original
        assert_served(response, rendition_url)
        assert response.headers["content-type"] == "image/svg+xml", (name, response.headers)
        assert SVG_CSP in response.headers.get("content-security-policy", ""), (name, response.headers)
        body = response.body.lower()
        assert b"<svg" in body and b"<rect" in body and b"<circle" in body, (name, body)
        for active in (b"<script", b"onload", b"onclick", b"javascript:", b"alert(", b"127.0.0.1:9"):
            assert active not in body, (name, active, body)
        if name == "original":
            assert hashlib.sha256(response.body).hexdigest() == record["sha256"]


# --- 3. the status document's URLs ---------------------------------------------------------------------------


def test_status_url_is_displayable_and_original_url_is_the_original(
    stack: Stack, camera_import: CameraImport,
) -> None:
    for name, item in by_external_id(camera_import.status).items():
        image = item["image"]
        shown = fetch(stack, image["url"])
        assert_served(shown, image["url"])
        picture = decode(shown.body)  # a browser can show it: a decodable JPEG/PNG/WebP/GIF
        assert shown.headers["content-type"] == PILLOW_MIME[str(picture.format)]
        assert picture.height > picture.width  # upright
        original = fetch(stack, image["originalUrl"])
        assert_served(original, image["originalUrl"])
        assert original.headers["content-type"] == "image/jpeg"
        assert original.body == camera_import.originals[name]  # exact bytes, streamed for the 3000x2000 one
        assert image["originalUrl"] == camera_import.records[name]["renditions"]["original"]


# --- 4. near-duplicates --------------------------------------------------------------------------------------


def test_near_duplicates_within_an_organisation(stack: Stack, origin: Origin, unique: str) -> None:
    tenant, stranger = new_tenant(stack), new_tenant(stack)
    picture = camera.photo(800, 600, seed=7)
    a_bytes = jpeg_bytes(picture, 92)
    b_bytes = jpeg_bytes(picture.resize((560, 420), Image.Resampling.LANCZOS), 60)  # resized, re-encoded
    a_url = origin.serve(f"/{unique}/a.jpg", a_bytes, Content_Type="image/jpeg")
    b_url = origin.serve(f"/{unique}/b.jpg", b_bytes, Content_Type="image/jpeg")
    other_url = origin.serve(f"/{unique}/other.jpg", images.jpeg(800, 600, seed=11), Content_Type="image/jpeg")

    first = by_external_id(run_import(stack, tenant.token, [{"url": a_url, "id": "a", "fileName": "a"}]))["a"]
    assert first["status"] == "success" and "duplicateOf" not in first["image"], first
    a_id = first["image"]["mediaId"]

    second = by_external_id(run_import(stack, tenant.token, [
        {"url": b_url, "id": "b", "fileName": "b"},
        {"url": a_url, "id": "a-again", "fileName": "a again"},  # exact duplicate under another id
        {"url": other_url, "id": "other", "fileName": "other"},  # a different picture
    ]))
    assert second["other"]["status"] == "success" and "duplicateOf" not in second["other"]["image"], second
    b_item, exact_item = second["b"], second["a-again"]
    assert b_item["status"] == "success" and exact_item["status"] == "success", second
    assert b_item["image"]["duplicateOf"]["mediaId"] == a_id, b_item
    assert 0 <= b_item["image"]["duplicateOf"]["distance"] <= 6
    b_record = get_record(stack, tenant.token, b_item["image"]["mediaId"])
    assert b_record["duplicateOf"]["mediaId"] == a_id
    assert 0 <= b_record["duplicateOf"]["distance"] <= 6
    assert b_record["duplicateOf"] == b_item["image"]["duplicateOf"]
    assert (b_record["width"], b_record["height"]) == (560, 420)

    exact_record = get_record(stack, tenant.token, exact_item["image"]["mediaId"])
    a_record = get_record(stack, tenant.token, a_id)
    assert exact_item["image"]["mediaId"] != a_id
    assert exact_record["sha256"] == a_record["sha256"] == hashlib.sha256(a_bytes).hexdigest()
    assert exact_record["duplicateOf"] == {"mediaId": a_id, "distance": 0}
    exact_original = fetch(stack, exact_record["renditions"]["original"])
    assert exact_original.body == a_bytes
    # Same content, same content-addressed validator: the two records share the stored bytes.
    assert exact_original.headers["etag"] == fetch(stack, a_record["renditions"]["original"]).headers["etag"]
    assert "duplicateOf" not in a_record  # the older image is the reference, not a duplicate

    elsewhere = by_external_id(run_import(stack, stranger.token, [{"url": b_url, "id": "b", "fileName": "b"}]))["b"]
    assert elsewhere["status"] == "success" and "duplicateOf" not in elsewhere["image"], elsewhere
    assert "duplicateOf" not in get_record(stack, stranger.token, elsewhere["image"]["mediaId"])


# --- 5. not found --------------------------------------------------------------------------------------------


def assert_not_found_json(response: Response) -> None:
    assert response.status == 404, (response.status, response.body[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and body.get("message"), body
    assert "Traceback" not in response.body.decode()


def test_unknown_media_id_or_rendition_is_a_json_404(stack: Stack, camera_import: CameraImport) -> None:
    token = camera_import.tenant.token
    record = camera_import.records["paris"]
    media_id = record["mediaId"]
    bogus = "z" * len(media_id)
    assert_not_found_json(stack.request("GET", f"/api/v1/images/{bogus}", token=token))
    assert_not_found_json(stack.request("GET", "/api/v1/images/not-an-id", token=token))
    assert_not_found_json(stack.request("GET", f"/api/v1/images/{bogus}/large"))
    assert_not_found_json(stack.request("GET", f"/api/v1/images/{media_id}/huge"))
    assert_not_found_json(stack.request("GET", f"/api/v1/images/{media_id}/huge?v={record['sha256'][:16]}"))


def test_another_organisation_cannot_read_the_record(stack: Stack, camera_import: CameraImport) -> None:
    stranger = new_tenant(stack)
    media_id = camera_import.records["paris"]["mediaId"]
    response = stack.request("GET", f"/api/v1/images/{media_id}", token=stranger.token)
    assert_not_found_json(response)
    assert b"Canon" not in response.body
    # Indistinguishable from an id that does not exist: no existence oracle across organisations.
    bogus = "z" * len(media_id)
    missing = stack.request("GET", f"/api/v1/images/{bogus}", token=stranger.token)
    # (Each error names its own request id; everything else must be identical.)
    def without_request_id(body: bytes, media: str) -> bytes:
        return re.sub(rb'"requestId":"[^"]*"', b"", body.replace(media.encode(), b"ID"))

    assert without_request_id(response.body, media_id) == without_request_id(missing.body, bogus)


# --- 6. limits -----------------------------------------------------------------------------------------------


def test_pixel_and_frame_limits_fail_items_with_clear_reasons(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str,
) -> None:
    truncated = camera.camera_jpeg(600, 400, camera.Camera(orientation=1), seed=3)
    served = {
        "good": images.jpeg(200, 150, seed=4),
        "sixty-megapixels": tiny_png_claiming(10_000, 6_000),  # 60 MP: over the 50 MP limit
        "bomb": tiny_png_claiming(30_000, 30_000),  # 900 MP in a few hundred bytes
        "truncated": truncated[: len(truncated) // 2],
        "many-frames": many_frames_gif(101),
    }
    assert all(len(data) < 10_000 for name, data in served.items() if name in ("sixty-megapixels", "bomb"))
    status = run_import(stack, org["token"], [
        {"url": origin.serve(f"/{unique}/{name}", data), "id": name, "fileName": name}
        for name, data in served.items()
    ])
    found = by_external_id(status)
    assert found["good"]["status"] == "success", found["good"]  # a bad neighbour harms nobody
    assert status["state"] == "success"
    for name in ("sixty-megapixels", "bomb"):
        item = found[name]
        assert item["status"] == "failed" and "image" not in item, item
        assert re.search(r"megapixel|pixels|decompression", item["reason"], re.IGNORECASE), item
    assert "50" in found["sixty-megapixels"]["reason"], found["sixty-megapixels"]  # names the limit
    assert found["truncated"]["status"] == "failed", found["truncated"]
    assert re.search(r"truncat|corrupt", found["truncated"]["reason"], re.IGNORECASE), found["truncated"]
    assert found["many-frames"]["status"] == "failed", found["many-frames"]
    assert re.search(r"frames", found["many-frames"]["reason"]) and "100" in found["many-frames"]["reason"]
    assert "Traceback" not in str(status)
