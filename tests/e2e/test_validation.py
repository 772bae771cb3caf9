"""Every validation rule: 400 naming the field, nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.stack import Stack

IMAGE = {"url": "http://127.0.0.1:9/a.jpg", "id": "a", "fileName": "a"}


def violations(response: Any) -> dict[str, str]:
    assert response.status == 400, response.body
    body = response.json()
    details = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert details, body
    return {v["field"]: v["description"] for v in details[0]["fieldViolations"]}


@pytest.mark.parametrize(("body", "field"), [
    ({"images": [IMAGE]}, "systemName"),
    ({"systemName": "s"}, "images"),
    ({"systemName": "s", "images": []}, "images"),
    ({"systemName": "s", "images": [{**IMAGE, "url": ""}]}, "images[0].url"),
    ({"systemName": "s", "images": [{**IMAGE, "id": ""}]}, "images[0].id"),
    ({"systemName": "s", "images": [{**IMAGE, "fileName": ""}]}, "images[0].fileName"),
    ({"systemName": "s", "images": [{**IMAGE, "url": "data:image/png;base64,iVBORw0KGgo="}]}, "images[0].url"),
    ({"systemName": "s", "images": [{**IMAGE, "url": "ftp://example.com/a.jpg"}]}, "images[0].url"),
    ({"systemName": "s", "images": [{**IMAGE, "url": "javascript:alert(1)"}]}, "images[0].url"),
    ({"systemName": "s", "images": [IMAGE, {**IMAGE, "url": "http://127.0.0.1:9/b.jpg"}]}, "images[1].id"),
    ({"systemName": "s", "images": [IMAGE], "context": {"k": "x" * 8190}}, "context"),
    ({"systemName": "s", "images": [{**IMAGE, "id": str(i)} for i in range(1001)]}, "images"),
    ({"systemName": "s", "images": [IMAGE], "webhook": "not a url"}, "webhook"),
    ({"systemName": "s\u0000", "images": [IMAGE]}, "systemName"),
])
def test_rule_names_the_field(stack: Stack, org: dict[str, str], body: dict[str, Any], field: str) -> None:
    before = stack.request("GET", "/api/v1/import/jobs?pageSize=200", token=org["token"]).json()["importJobs"]
    response = stack.request("POST", "/api/v1/import/images", token=org["token"], body=body)
    assert field in violations(response)
    after = stack.request("GET", "/api/v1/import/jobs?pageSize=200", token=org["token"]).json()["importJobs"]
    assert after == before  # nothing stored


def test_context_of_exactly_8192_bytes_is_accepted(stack: Stack, org: dict[str, str]) -> None:
    filler = "x" * (8192 - len(json.dumps({"k": ""}, separators=(",", ":"))))
    body = {"systemName": "s", "images": [IMAGE], "context": {"k": filler}}
    assert stack.request("POST", "/api/v1/import/images", token=org["token"], body=body).status == 200


def test_wrong_types_and_malformed_json_are_400(stack: Stack, org: dict[str, str]) -> None:
    for raw in (b'{"systemName": 5, "images": []}', b'{"systemName": "s", "images": {}}', b'{"systemName": ',
                b"\xff\xfe", b'[1, 2]'):
        response = stack.request("POST", "/api/v1/import/images", token=org["token"], raw=raw)
        assert response.status == 400, (raw, response.status, response.body)
        assert "message" in response.json()


def test_unknown_query_parameter_is_rejected(stack: Stack, org: dict[str, str]) -> None:
    response = stack.request("GET", "/api/v1/import/images/status?id=abc&bogus=1", token=org["token"])
    assert response.status == 400 and "bogus" in response.json()["message"]


def test_unknown_body_fields_are_ignored(stack: Stack, org: dict[str, str]) -> None:
    body = {"systemName": "s", "images": [{**IMAGE, "extra": 1}], "somethingNew": True}
    assert stack.request("POST", "/api/v1/import/images", token=org["token"], body=body).status == 200
