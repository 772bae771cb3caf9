"""Hostile-request battery through the edge: every bad request is a 4xx with a JSON message naming the field.

Never a 5xx; afterwards the stack is ready and a job accepted before the battery is still readable and
finishes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support import images
from support.origin import Origin
from support.stack import Response, Stack

IMG = {"url": "http://127.0.0.1:9/a.jpg", "id": "a", "fileName": "a"}
IMG_JSON = json.dumps(IMG)
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


@dataclass
class Prior:
    token: str
    job_id: str


@pytest.fixture(scope="module", autouse=True)
def prior(stack: Stack, origin: Origin) -> Iterator[Prior]:
    """A job accepted before the battery, still running while it goes on (one image is served slowly)."""
    client = stack.create_client("hostile-requests")
    token = stack.token(client["client_id"])
    fast = origin.serve("/hostile-requests/fast.jpg", images.jpeg(100, 50, seed=41))
    slow = origin.serve("/hostile-requests/slow.png", images.png(30, 20), delay=3.0)
    job_id = stack.import_batch(token, [{"url": fast, "id": "fast", "fileName": "fast"},
                                        {"url": slow, "id": "slow", "fileName": "slow"}], system="prior")
    yield Prior(token, job_id)


def _body(**fields: Any) -> bytes:
    return json.dumps({"systemName": "s", "images": [IMG], **fields}).encode()


def _image(**fields: Any) -> bytes:
    return _body(images=[{**IMG, **fields}])


def _raw_image_field(name: str, raw_value: str) -> bytes:
    """An image whose `name` is given as raw JSON text (for escapes json.dumps would not produce)."""
    image = {k: v for k, v in IMG.items() if k != name}
    inner = json.dumps(image)[:-1] + f', "{name}": {raw_value}}}'
    return b'{"systemName": "s", "images": [' + inner.encode() + b"]}"


def _deep(depth: int, where: str = "metadata", kind: str = "array") -> bytes:
    value = "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth
    if where == "metadata":
        return _raw_image_field("metadata", '{"n": ' + value + "}")
    if where == "context":
        return b'{"systemName": "s", "images": [' + IMG_JSON.encode() + b'], "context": {"n": ' + value.encode() + b"}}"
    return b'{"systemName": "s", "unknown": ' + value.encode() + b', "images": [' + IMG_JSON.encode() + b"]}"


def _violations(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {}
    for detail in body.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.BadRequest"):
            return {v["field"]: v.get("description", "") for v in detail.get("fieldViolations", [])}
    return {}


def assert_client_error(response: Response, *fields: str, status: int | tuple[int, ...] = 400) -> dict[str, Any]:
    """A 4xx (the expected one), JSON, with a message; `fields` are alternative spellings of the field named."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status in expected, (response.status, response.body[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    message = body["message"]
    assert "Traceback" not in message and "<class" not in message, message
    if fields:
        named = set(_violations(body)) | {message}
        assert any(field in text for field in fields for text in named), (fields, body)
    return body


POST = "/api/v1/import/images"

# (name, raw body, expected status, spellings of the field the message must name (none: a syntax error))
BAD_BODIES: list[tuple[str, bytes, int, tuple[str, ...]]] = [
    # Malformed JSON
    ("truncated", b'{"systemName": "s", "images": [', 400, ()),
    ("trailing-garbage", b'{"systemName": "s", "images": []} xx', 400, ()),
    ("string-root", b'"hello"', 400, ()),
    ("null-root", b"null", 400, ()),
    ("array-root", b"[1, 2]", 400, ()),
    ("bom", b'\xef\xbb\xbf{"systemName": "s"}', 400, ()),
    ("nan", _raw_image_field("metadata", '{"n": NaN}'), 400, ()),
    ("comment", b'{"systemName": "s", /* hi */ "images": []}', 400, ()),
    ("single-quotes", b"{'systemName': 's'}", 400, ()),
    ("form-as-json", b"systemName=s&images[0][url]=x", 400, ()),
    ("empty-object", b"{}", 400, ("systemName", "images")),
    # Wrong types
    ("systemName-number", b'{"systemName": 12, "images": [' + IMG_JSON.encode() + b"]}", 400,
     ("systemName", "system_name")),
    ("systemName-object", b'{"systemName": {"a": 1}, "images": [' + IMG_JSON.encode() + b"]}", 400,
     ("systemName", "system_name")),
    ("systemName-null", b'{"systemName": null, "images": [' + IMG_JSON.encode() + b"]}", 400, ("systemName",)),
    ("images-string", b'{"systemName": "s", "images": "abc"}', 400, ("images",)),
    ("images-number", b'{"systemName": "s", "images": 5}', 400, ("images",)),
    ("images-null", b'{"systemName": "s", "images": null}', 400, ("images",)),
    ("images-item-string", b'{"systemName": "s", "images": ["abc"]}', 400, ("images[0]",)),
    ("images-item-null", b'{"systemName": "s", "images": [null]}', 400, ("images",)),
    ("images-item-empty", b'{"systemName": "s", "images": [{}]}', 400, ("images[0].url",)),
    ("url-number", _image(url=5), 400, ("images[0].url",)),
    ("url-object", _image(url={}), 400, ("images[0]",)),
    ("id-bool", _image(id=True), 400, ("images[0].id",)),
    ("id-object", _image(id={"x": 1}), 400, ("images[0]",)),
    ("fileName-number", _image(fileName=1.5), 400, ("images[0].fileName", "images[0].file_name")),
    ("metadata-string", _image(metadata="x"), 400, ("images[0].metadata",)),
    ("context-string", _body(context="x"), 400, ("context",)),
    ("context-number", _body(context=5), 400, ("context",)),
    ("webhook-number", _body(webhook=1), 400, ("webhook",)),
    ("webhook-not-url", _body(webhook="javascript:alert(1)"), 400, ("webhook",)),
    ("requestId-number", _body(requestId=1e300), 400, ("requestId", "request_id")),
    # Huge numbers
    ("metadata-huge-int", _raw_image_field("metadata", '{"n": 1' + "0" * 400 + "}"), 400, ()),
    ("metadata-huge-float", _raw_image_field("metadata", '{"n": 1e999}'), 400, ()),
    ("context-huge-negative", b'{"systemName": "s", "images": [' + IMG_JSON.encode() + b'], "context": {"n": -1e400}}',
     400, ()),
    # Deep nesting (far beyond any limit)
    ("deep-metadata-arrays", _deep(5000), 400, ()),
    ("deep-metadata-objects", _deep(5000, kind="object"), 400, ()),
    ("deep-context", _deep(5000, "context"), 400, ()),
    ("deep-unknown-field", _deep(5000, "unknown"), 400, ()),
    # NUL characters, as escapes and as raw bytes
    ("nul-systemName", _body(systemName="s\u0000"), 400, ("systemName",)),
    ("nul-raw-systemName", b'{"systemName": "s\x00", "images": [' + IMG_JSON.encode() + b"]}", 400,
     ("systemName",)),
    ("nul-url", _image(url="http://127.0.0.1:9/a\u0000.jpg"), 400, ("images[0].url",)),
    ("nul-id", _image(id="a\u0000b"), 400, ("images[0].id",)),
    ("nul-fileName", _image(fileName="a\u0000"), 400, ("images[0].fileName",)),
    ("nul-mediaType", _image(mediaType="\u0000"), 400, ("images[0].mediaType",)),
    ("nul-metadata-value", _image(metadata={"k": "v\u0000"}), 400, ("images[0].metadata",)),
    ("nul-metadata-key", _image(metadata={"k\u0000": "v"}), 400, ("images[0].metadata",)),
    ("nul-context", _body(context={"k": ["\u0000"]}), 400, ("context",)),
    ("nul-webhook", _body(webhook="http://127.0.0.1:9/\u0000"), 400, ("webhook",)),
    ("nul-requestId", _body(requestId="\u0000"), 400, ("requestId",)),
    # Invalid UTF-8 and invalid escapes
    ("utf8-invalid-systemName", b'{"systemName": "s\xff\xfe", "images": []}', 400, ()),
    ("utf8-invalid-id", b'{"systemName": "s", "images": [{"url": "http://127.0.0.1:9/a.jpg", "id": "a\xc3", '
                        b'"fileName": "a"}]}', 400, ()),
    ("utf8-overlong", b'{"systemName": "s\xc0\xaf", "images": []}', 400, ()),
    ("utf8-surrogate-bytes", b'{"systemName": "s\xed\xa0\x80", "images": []}', 400, ()),
    ("lone-high-surrogate", _raw_image_field("id", '"a\\ud800"'), 400, ()),
    ("lone-low-surrogate", _raw_image_field("metadata", '{"k": "\\udfff"}'), 400, ()),
    ("utf16-body", '{"systemName": "s", "images": []}'.encode("utf-16"), 400, ()),
    # Limits
    ("images-10000", json.dumps({"systemName": "s", "images": [{**IMG, "id": str(i)} for i in range(10_000)]}
                                ).encode(), 400, ("images",)),
    ("duplicate-ids", _body(images=[IMG, {**IMG, "url": "http://127.0.0.1:9/b.jpg"}]), 400, ("images[1].id",)),
    ("context-8193-bytes", _body(context={"k": "x" * (8193 - len('{"k":""}'))}), 400, ("context",)),
    ("id-too-long", _image(id="x" * 100_000), 400, ("images[0].id",)),
    ("systemName-too-long", _body(systemName="s" * 100_000), 400, ("systemName",)),
    ("fileName-too-long", _image(fileName="f" * 100_000), 400, ("images[0].fileName",)),
    ("metadata-too-big", _image(metadata={f"k{i}": i for i in range(50_000)}), 400, ("images[0].metadata",)),
    ("url-too-long", _image(url="http://127.0.0.1:9/" + "a" * 9000), 400, ("images[0].url",)),
    ("url-data", _image(url="data:image/png;base64,iVBORw0KGgo="), 400, ("images[0].url",)),
    ("url-file", _image(url="file:///etc/passwd"), 400, ("images[0].url",)),
]


@pytest.mark.parametrize(("body", "status", "fields"), [pytest.param(b, s, f, id=n) for n, b, s, f in BAD_BODIES])
def test_bad_import_bodies(stack: Stack, prior: Prior, body: bytes, status: int, fields: tuple[str, ...]) -> None:
    response = stack.request("POST", POST, token=prior.token, raw=body)
    assert_client_error(response, *fields, status=status)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
IMPORTS = "/api/v1/imports"  # the SharinPix single-import endpoint, which takes bracket-key forms


@pytest.mark.parametrize(("path", "raw", "headers", "field"), [
    pytest.param(POST, b'{"systemName": ["a"], "images": [' + IMG_JSON.encode() + b"]}", {}, "system",
                 id="systemName-list"),
    pytest.param(POST, _body(webhook=[]), {}, "webhook", id="webhook-list"),
    pytest.param(POST, _body(context=[1]), {}, "context", id="context-list"),
    pytest.param(POST, _image(url=["x"]), {}, "images[0].url", id="url-list"),
    pytest.param(POST, _image(metadata=[1, 2]), {}, "images[0].metadata", id="metadata-list"),
    pytest.param(IMPORTS, b"url[]=x", FORM, "url", id="form-url-list"),
    pytest.param(IMPORTS, b"metadata[]=1", FORM, "metadata", id="form-metadata-list"),
    pytest.param(IMPORTS, b"album_id[]=1", FORM, "album_id", id="form-album-list"),
])
def test_list_for_a_scalar_names_the_field(stack: Stack, prior: Prior, path: str, raw: bytes,
                                           headers: dict[str, str], field: str) -> None:
    body = assert_client_error(stack.request("POST", path, token=prior.token, raw=raw, headers=headers))
    assert field in body["message"], body


# (form body, text the message must contain: the offending key, or the limit)
BAD_FORMS: list[tuple[bytes, str]] = [
    (b"a[[=1", "a[["),
    (b"a]=1", "a]"),
    (b"[a]=1", "[a]"),
    (b"a[]]=1", "a[]]"),
    (b"=x", "field"),
    (b"a[]=1&a[x]=2", "a[x]"),
    (b"a=1&a[b]=2", "a[b]"),
    (b"a[b]=1&a=2", "a"),
    (b"a[][b]=1", "a[][b]"),
    (b"metadata[a][b][c][d][e][f][g][h][i]=1", "metadata[a][b]"),
    ("&".join(f"k{i}=v" for i in range(2500)).encode(), "2000"),
    (b"url=%00", "url"),
    (b"filename=%00&url=x", "filename"),
    (b"metadata[k]=%00", "metadata"),
    (b"metadata=x", "metadata"),
    (b"headers=x", "headers"),
    (b"headers[]=x", "headers"),
    (b"url[a]=x", "url"),
    (b"url=not-a-url", "url"),
    (b"url=javascript%3Aalert(1)", "url"),
    (b"%ff=1", ""),
    (b"a=" + b"%41" * 100_000, ""),
]


@pytest.mark.parametrize(("raw", "named"), [pytest.param(r, n, id=f"form{i}") for i, (r, n) in enumerate(BAD_FORMS)])
def test_bad_form_bodies(stack: Stack, prior: Prior, raw: bytes, named: str) -> None:
    response = stack.request("POST", IMPORTS, token=prior.token, raw=raw, headers=FORM)
    if response.status == 404:
        pytest.fail("no form endpoint at /api/v1/imports in this build")
    assert_client_error(response, *((named,) if named else ()))


def test_form_rejection_message_is_plain_text(stack: Stack, prior: Prior) -> None:
    body = assert_client_error(stack.request("POST", IMPORTS, token=prior.token, raw=b"a[[=1", headers=FORM), "a[[")
    assert body["message"].startswith("malformed form body"), body


def _lua_errors(stack: Stack) -> int:
    log = stack.data_dir / "logs" / "envoy.log"
    return sum("[lua]" in line for line in log.read_text(errors="replace").splitlines()) if log.exists() else 0


def test_form_conversion_runs_without_lua_errors(stack: Stack, prior: Prior) -> None:
    before = _lua_errors(stack)
    response = stack.request("POST", IMPORTS, token=prior.token, raw=b"album_id=a&metadata[k]=v&url=x", headers=FORM)
    assert response.status < 500
    time.sleep(1.0)  # Envoy writes its log asynchronously
    assert _lua_errors(stack) == before


@pytest.mark.parametrize("raw", [
    pytest.param(_deep(60), id="metadata-60-arrays"),
    pytest.param(_deep(49), id="metadata-49-arrays"),
    pytest.param(_deep(40, kind="object"), id="metadata-40-objects"),
    pytest.param(_deep(60, "context"), id="context-60-arrays"),
])
def test_moderately_deep_nesting_is_a_400(stack: Stack, prior: Prior, raw: bytes) -> None:
    assert_client_error(stack.request("POST", POST, token=prior.token, raw=raw), "metadata", "context", "deep")


@pytest.mark.parametrize(("method", "path"), [
    pytest.param("GET", "/api/v1/import/jobs/%ff%fe", id="job-id-path"),
    pytest.param("GET", "/api/v1/import/jobs/%c0%af", id="job-id-overlong"),
    pytest.param("GET", "/api/v1/import/images/status?id=%ff", id="status-query"),
    pytest.param("GET", "/api/v1/import/jobs?pageToken=%00%ff", id="page-token"),
    pytest.param("POST", "/api/v1/import/jobs/%ff:cancel", id="cancel"),
    pytest.param("GET", "/api/v1/images/%ff/original", id="public-rendition"),
    pytest.param("GET", "/api/v1/webhooks/deliveries?jobId=%ff", id="deliveries"),
])
def test_invalid_utf8_in_path_and_query_is_a_400(stack: Stack, prior: Prior, method: str, path: str) -> None:
    response = stack.request(method, path, token=prior.token, raw=b"{}" if method == "POST" else None)
    assert_client_error(response, status=(400, 404))


def test_oversized_body_is_413(stack: Stack, prior: Prior) -> None:
    huge = b'{"systemName": "' + b"x" * (4 * 1024 * 1024 + 1) + b'", "images": []}'
    assert_client_error(stack.request("POST", POST, token=prior.token, raw=huge), status=413)


@pytest.mark.parametrize("headers", [
    pytest.param({"X-Big": "a" * 70_000}, id="one-huge-header"),
    pytest.param({f"X-Many-{i}": "b" * 100 for i in range(400)}, id="many-headers"),
    pytest.param({"Authorization": "Bearer " + "c" * 60_000}, id="huge-token"),
])
def test_oversized_headers_are_4xx(stack: Stack, prior: Prior, headers: dict[str, str]) -> None:
    response = stack.request("GET", "/api/v1/import/jobs", token=prior.token, headers=headers)
    assert 400 <= response.status < 500, response.status
    if response.body:
        assert_client_error(response, status=response.status)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/v1/nothing-here", 404),
    ("GET", "/etc/passwd", 404),
    ("GET", "/api/v1/import/images", (404, 405)),
    ("PUT", "/api/v1/import/images", (404, 405)),
    ("DELETE", "/api/v1/import/jobs/abc", (404, 405)),
    ("PATCH", "/api/v1/import/jobs", (404, 405)),
    ("OPTIONS", "/api/v1/import/images", (404, 405)),
    ("TRACE", "/api/v1/import/images", (404, 405)),
    ("POST", "/api/v1/import/jobs", (404, 405)),
    ("GET", "/api/v1/import/jobs/x:cancel", (404, 405)),
    ("FOO", "/api/v1/import/jobs", (400, 405, 501)),
    # Path traversal: normalised by the edge (and then unknown), or refused outright (escaped slashes).
    ("GET", "/api/v1/import/jobs/..%2F..%2Fetc", (400, 404)),
    ("GET", "/api/v1/import/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd", (400, 404)),
    ("GET", "/api/v1/import/jobs/..%5C..%5Cetc", (400, 404)),
    ("GET", "/api/v1/import/jobs/../../etc/passwd", 404),
    ("GET", "/api/v1/import/jobs/%2e%2e", 404),
    ("GET", "/api/v1/import/jobs/%00", (400, 404)),
    ("GET", "/api/v1/import/images/status?id=../../etc/passwd", 404),
    ("GET", "/api/v1/import/images/status?id=%0d%0aX-Injected:%201", 404),
    ("GET", "/api/v1/images/../../etc/passwd/original", 404),
    ("GET", "/api/v1/images/..%2F..%2Fetc%2Fpasswd/original", (400, 404)),
    ("GET", "/api/v1/images/%2e%2e/original", 404),
    ("GET", "/api/v1/images/abc/..%2f..%2f", (400, 404)),
    ("GET", "/api/v1/images/abc/original?v=../../../etc/passwd", 404),
    ("GET", "/api/v1/images/abc/..", 404),
    ("POST", "/api/v1/webhooks/deliveries/..%2Fx:redeliver", (400, 404)),
    # Query strings
    ("GET", "/api/v1/import/jobs?pageSize=99999999999999999999", 400),
    ("GET", "/api/v1/import/jobs?pageSize=abc", 400),
    ("GET", "/api/v1/import/jobs?pageSize=-1", 400),
    ("GET", "/api/v1/import/jobs?pageToken=" + "A" * 5000, 400),
    ("GET", "/api/v1/import/jobs?view=IMPORT_JOB_VIEW_EVERYTHING", 400),
    ("GET", "/api/v1/import/jobs?bogus=1", 400),
    ("GET", "/api/v1/import/images/status/stream?id=x&afterSequence=999999999999999999999", 400),
    ("GET", "/ready?x=1", 400),
])
def test_unknown_paths_methods_and_traversal(stack: Stack, prior: Prior, method: str, path: str,
                                             status: int | tuple[int, ...]) -> None:
    response = stack.request(method, path, token=prior.token)
    assert_client_error(response, status=status)
    assert b"root:x:0" not in response.body


@pytest.mark.parametrize(("raw", "status", "field"), [
    pytest.param(b"[", 400, (), id="malformed"),
    pytest.param(b'{"id": 5}', 400, ("id",), id="id-number"),
    pytest.param(b'{"id": "other"}', 400, ("id",), id="id-conflict"),
])
def test_bad_cancel_bodies(stack: Stack, prior: Prior, raw: bytes, status: int, field: tuple[str, ...]) -> None:
    response = stack.request("POST", "/api/v1/import/jobs/abc:cancel", token=prior.token, raw=raw)
    assert_client_error(response, *field, status=status)


@pytest.mark.parametrize(("method", "path", "headers"), [
    pytest.param("GET", "/api/v1/import/jobs/..%2F..%2Fetc", {}, id="escaped-slash"),
    pytest.param("GET", "/api/v1/import/jobs/a%00b", {}, id="nul-in-path"),
    pytest.param("GET", "/api/v1/import/jobs", {"X-Big": "a" * 70_000}, id="headers-too-large"),
    pytest.param("FOO", "/api/v1/import/jobs", {}, id="unknown-method"),
    pytest.param("GET", "/api/v1/import/jobs", {"X_Underscore": "1"}, id="underscore-header"),
])
def test_edge_rejections_are_complete_errors(stack: Stack, prior: Prior, method: str, path: str,
                                             headers: dict[str, str]) -> None:
    response = stack.request(method, path, token=prior.token, headers=headers)
    body = assert_client_error(response, status=(400, 404, 405, 431, 501))
    # Refused by the connection manager before routing: no request id exists yet, and Envoy's own
    # detail (ErrorInfo `reason`, e.g. path_normalization_failed) says what was wrong when it gives no message.
    assert body["message"] or body["details"][0]["reason"], body
    for key, value in SECURITY_HEADERS.items():
        assert response.headers.get(key) == value, (key, response.headers)


def _files_named(root: str, name: str) -> list[str]:
    found = []
    for directory, _dirs, files in os.walk(root, onerror=lambda _error: None):
        found += [os.path.join(directory, f) for f in files if f == name]
    return found


def test_traversal_in_names_is_only_data(stack: Stack, origin: Origin, prior: Prior) -> None:
    """Ids, titles and system names are strings pixport stores, never paths it writes to."""
    url = origin.serve("/hostile-requests/traversal.jpg", images.jpeg(40, 30, seed=42))
    names = ["../../../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", "a/../../b", "%2e%2e%2fx",
             "CON", "nul.jpg", "\u202egnp.exe"]
    spec = [{"url": url, "id": name, "fileName": name} for name in names]
    job = stack.wait_job(stack.import_batch(prior.token, spec, system="../../etc"), prior.token)
    assert job["state"] == "success"
    for name, item in zip(names, job["images"], strict=True):
        assert item["externalId"] == name and item["title"] == name, item
        assert item["status"] in ("success", "skipped"), item
        original = stack.request("GET", item["image"]["originalUrl"].split(str(stack.http_port), 1)[1])
        assert original.status == 200 and original.headers["content-type"] == "image/jpeg"
    for name in ("passwd", "shadow", "win.ini", "gnp.exe"):
        assert _files_named(str(stack.data_dir), name) == [], name


def test_after_the_battery_nothing_is_lost(stack: Stack, prior: Prior) -> None:
    """Last in the module: the stack is ready, and the job accepted before the battery finished normally."""
    assert stack.request("GET", "/ready").status == 200
    job = stack.wait_job(prior.job_id, prior.token, timeout=60)
    assert job["state"] == "success"
    assert [(i["externalId"], i["status"]) for i in job["images"]] == [("fast", "success"), ("slow", "success")]
    by_path = stack.request("GET", f"/api/v1/import/jobs/{prior.job_id}", token=prior.token)
    assert by_path.status == 200 and by_path.json()["id"] == prior.job_id
    started = time.monotonic()
    assert stack.request("GET", "/api/v1/import/jobs?pageSize=5", token=prior.token).status == 200
    assert time.monotonic() - started < 5
