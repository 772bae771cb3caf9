"""One error shape for every non-2xx answer (except the seed's 429 list), whether Envoy or the server
answered: HTTP status and gRPC status name as separate fields, message, request id, google.rpc details."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.stack import Response, Stack, free_port

from gateway import edge

ERROR_KEYS = {"code", "status", "message", "requestId", "details"}


def assert_error(response: Response, status: int, grpc_status: str, *, field: str | None = None,
                 reason: str | None = None) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body[:400])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == status and body["status"] == grpc_status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["requestId"] == response.headers["x-request-id"], (body, response.headers)
    for detail in body["details"]:
        assert detail["@type"].startswith("type.googleapis.com/google.rpc."), body
    info = [d for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert info and info[0]["domain"] == "pixport", body
    if reason is not None:
        assert info[0]["reason"] == reason, body
    if field is not None:
        [bad_request] = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
        assert field in {v["field"] for v in bad_request["fieldViolations"]}, body
    return body  # type: ignore[no-any-return]


def post_raw(stack: Stack, path: str, body: bytes, content_type: str, token: str) -> Response:
    return stack.request("POST", path, raw=body, token=token, headers={"Content-Type": content_type})


def test_parse_errors_say_what_is_malformed(stack: Stack, org: dict[str, str]) -> None:
    quotes = post_raw(stack, "/api/v1/import/images", b"{'systemName': 'x'}", "application/json", org["token"])
    body = assert_error(quotes, 400, "INVALID_ARGUMENT", reason="MALFORMED_JSON")
    assert "single quotes" in body["message"]
    comma = post_raw(stack, "/api/v1/import/images", b'{"systemName": "x", "images": [],}', "application/json",
                     org["token"])
    assert "trailing comma" in assert_error(comma, 400, "INVALID_ARGUMENT", reason="MALFORMED_JSON")["message"]
    nul = post_raw(stack, "/api/v1/import/images", b'{"systemName": "a\x00"}', "application/json", org["token"])
    assert_error(nul, 400, "INVALID_ARGUMENT", field="systemName")


def test_object_where_a_list_belongs_is_refused(stack: Stack, org: dict[str, str]) -> None:
    body = b'{"systemName": "x", "images": {"url": "https://example.com/a.jpg", "id": "1", "fileName": "a"}}'
    response = post_raw(stack, "/api/v1/import/images", body, "application/json", org["token"])
    error = assert_error(response, 400, "INVALID_ARGUMENT", field="images", reason="INVALID_SHAPE")
    assert "list" in error["message"] and "object" in error["message"]


def test_validation_errors_name_fields_by_json_path(stack: Stack, org: dict[str, str]) -> None:
    response = stack.request("POST", "/api/v1/import/images", token=org["token"],
                             body={"systemName": "x", "images": [{"url": "ftp://x", "id": "1", "fileName": "a"}]})
    assert_error(response, 400, "INVALID_ARGUMENT", field="images[0].url", reason="INVALID_ARGUMENT")


def test_unknown_query_parameters_of_api_methods_are_named(stack: Stack, org: dict[str, str]) -> None:
    response = stack.request("GET", "/api/v1/import/jobs?pageSize=1&colour=blue", token=org["token"])
    assert "colour" in assert_error(response, 400, "INVALID_ARGUMENT")["message"]


def test_unauthenticated_and_forbidden(stack: Stack, org: dict[str, str]) -> None:
    missing = stack.request("GET", "/api/v1/import/jobs")
    assert_error(missing, 401, "UNAUTHENTICATED")
    assert "www-authenticate" in missing.headers
    reader = stack.create_client(f"{org['org']}-reader", "public-api:read")
    token = stack.token(reader["client_id"], "public-api:read")
    forbidden = stack.request("POST", "/api/v1/import/images", token=token,
                              body={"systemName": "x", "images": [{"url": "https://e.com/a.jpg", "id": "1",
                                                                   "fileName": "a"}]})
    assert_error(forbidden, 403, "PERMISSION_DENIED")


def test_not_found_from_server_and_from_edge(stack: Stack, org: dict[str, str]) -> None:
    assert_error(stack.request("GET", "/api/v1/import/jobs/nosuchjob", token=org["token"]), 404, "NOT_FOUND",
                 reason="NOT_FOUND")
    assert_error(stack.request("GET", "/api/v1/no/such/path", token=org["token"]), 404, "NOT_FOUND")


def test_method_not_allowed_lists_the_allowed_ones(stack: Stack, org: dict[str, str]) -> None:
    get_on_post = stack.request("GET", "/api/v1/import/images", token=org["token"])
    assert_error(get_on_post, 405, "UNIMPLEMENTED", reason="METHOD_NOT_ALLOWED")
    assert get_on_post.headers["allow"] == "POST"
    post_on_get = stack.request("POST", "/api/v1/import/images/status", body={}, token=org["token"])
    assert_error(post_on_get, 405, "UNIMPLEMENTED")
    assert post_on_get.headers["allow"] == "GET, HEAD"
    get_on_cancel = stack.request("GET", "/api/v1/import/jobs/abc:cancel", token=org["token"])
    assert get_on_cancel.status == 405 and get_on_cancel.headers["allow"] == "POST"


def test_body_too_large(stack: Stack, org: dict[str, str]) -> None:
    big = b'{"systemName": "' + b"x" * (5 << 20) + b'"}'
    assert_error(post_raw(stack, "/api/v1/import/images", big, "application/json", org["token"]),
                 413, "RESOURCE_EXHAUSTED")


def test_wrong_content_type(stack: Stack, org: dict[str, str]) -> None:
    plain = post_raw(stack, "/api/v1/import/images", b"{}", "text/plain", org["token"])
    refused = assert_error(plain, 415, "INVALID_ARGUMENT", reason="UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in refused["message"]
    # A form sent to the JSON-only batch endpoint: said so, not "images[0].url: is required".
    form = post_raw(stack, "/api/v1/import/images", b"systemName=x&images[0][url]=https://e.com/a.jpg",
                    "application/x-www-form-urlencoded", org["token"])
    assert "application/x-www-form-urlencoded" in assert_error(form, 415, "INVALID_ARGUMENT")["message"]


def test_quota_429_keeps_the_seed_list_body(stack: Stack, unique: str) -> None:
    org = f"quota-shape-{unique}"
    client = stack.create_client(org)
    token = stack.token(client["client_id"])
    stack.cli("org", "set-quota", "--org", org, "--images-per-day", "1")
    images = [{"url": f"https://example.com/{i}.jpg", "id": str(i), "fileName": "a"} for i in range(2)]
    response = stack.request("POST", "/api/v1/import/images", token=token, body={"systemName": "s", "images": images})
    assert response.status == 429 and int(response.headers["retry-after"]) > 0
    [entry] = response.json()
    assert (entry["status"], entry["error"]) == (429, "Usage Limit Exceeded")


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"edge not listening on {port}")


def test_unavailable_server_gets_503_in_the_same_shape(tmp_path: Path) -> None:
    # An edge whose gRPC server is not there (a port nothing listens on): Envoy's own 503.
    http_port, admin_port, dead_port = free_port(), free_port(), free_port()
    config = tmp_path / "envoy.yaml"
    config.write_text(edge.render(http_port=http_port, grpc_port=dead_port, admin_port=admin_port))
    process = edge.start(config, tmp_path / "envoy.log")
    try:
        _wait_port(http_port)
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        connection.request("GET", "/api/v1/import/jobs")
        raw = connection.getresponse()
        response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        connection.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert_error(response, 503, "UNAVAILABLE")


@pytest.mark.parametrize("query", ["?format=auto&_=123", "?format=auto", "?_=1&v={v}&cb=2"])
def test_image_urls_ignore_unknown_query_parameters(stack: Stack, org: dict[str, str], query: str,
                                                    origin: Any, unique: str) -> None:
    from support import images

    url = origin.serve(f"/{unique}/q.png", images.png())
    done = stack.wait_job(stack.import_batch(org["token"], [{"url": url, "id": unique, "fileName": "q"}]),
                          org["token"])
    image = done["images"][0]["image"]
    for absolute in (image["url"], image["originalUrl"]):
        path, _, given = absolute.split(str(stack.http_port), 1)[1].partition("?")
        version = given.removeprefix("v=")
        response = stack.request("GET", path + query.format(v=version))
        assert response.status == 200, (path, response.body[:300])
        assert response.headers["content-type"].startswith("image/") and response.body


def test_conflict_409_redelivering_a_delivery_in_flight(stack: Stack, org: dict[str, str], origin: Any,
                                                        unique: str) -> None:
    from support import images

    # The receiver holds the webhook POST for a few seconds: the delivery is being attempted meanwhile.
    hook = origin.serve(f"/{unique}/slow-hook", b"ok", delay=6.0)
    image = origin.serve(f"/{unique}/w.png", images.png())
    job_id = stack.import_batch(org["token"], [{"url": image, "id": "w", "fileName": "w"}], webhook=hook)
    deadline = time.monotonic() + 30
    while not origin.requests_to(f"/{unique}/slow-hook"):
        assert time.monotonic() < deadline, "webhook never attempted"
        time.sleep(0.1)
    log = stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}", token=org["token"]).json()
    [delivery] = log["webhookDeliveries"]
    busy = stack.request("POST", f"/api/v1/webhooks/deliveries/{delivery['id']}:redeliver", token=org["token"],
                         body={})
    body = assert_error(busy, 409, "ABORTED", reason="CONFLICT")
    assert "being attempted" in body["message"]
