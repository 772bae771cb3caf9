"""The edge itself: readiness, security headers, request ids, JSON errors, no gRPC leakage."""

from __future__ import annotations

from support.stack import Stack

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "origin-when-cross-origin, strict-origin-when-cross-origin",
}


def test_ready(stack: Stack) -> None:
    response = stack.request("GET", "/ready")
    assert response.status == 200 and response.json()["ready"] is True


def test_headers_on_success_and_errors(stack: Stack, org: dict[str, str]) -> None:
    for response in (
        stack.request("GET", "/api/v1/import/jobs", token=org["token"]),
        stack.request("GET", "/api/v1/import/images/status?id=nope", token=org["token"]),
        stack.request("GET", "/api/v1/import/images/status?id=nope"),
        stack.request("GET", "/no/such/path"),
        stack.request("DELETE", "/api/v1/import/images"),
    ):
        for key, value in SECURITY_HEADERS.items():
            assert response.headers.get(key) == value, (key, response.headers)
        assert "no-store" in response.headers["cache-control"]
        assert response.headers["x-request-id"]
        assert not any(key.startswith("grpc-") for key in response.headers), response.headers
        assert response.headers["content-type"].startswith("application/json")
        if response.status >= 400:
            assert response.json()["message"]


def test_unknown_path_is_json_404(stack: Stack) -> None:
    response = stack.request("GET", "/api/v1/nothing-here")
    assert response.status == 404 and response.json()["code"] == 404


def test_oversized_body_is_413(stack: Stack, org: dict[str, str]) -> None:
    huge = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    response = stack.request("POST", "/api/v1/import/images", token=org["token"], raw=huge)
    assert response.status == 413


def test_request_ids_differ(stack: Stack) -> None:
    first, second = stack.request("GET", "/ready"), stack.request("GET", "/ready")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
