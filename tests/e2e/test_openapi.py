"""The OpenAPI document served by the edge: valid, complete for the seeds, and true: requests generated
from it never get a 5xx, and every response matches what the document says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from support import images
from support.origin import Origin
from support.stack import Response, Stack

SEED_OPERATIONS = {("/api/v1/imports", "post"), ("/api/v1/import/images", "post"),
                   ("/api/v1/import/images/status", "get"), ("/api/v1/albums/{album_id}/images", "post")}


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    response = stack.request("GET", "/api/v1/openapi.json")
    assert response.status == 200 and response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


def test_served_document_is_valid_and_covers_the_seeds(document: dict[str, Any]) -> None:
    validate(document)
    operations = {(path, verb) for path, verbs in document["paths"].items() for verb in verbs}
    assert operations >= SEED_OPERATIONS
    assert {"bearerAuth", "sharinpixToken"} <= set(document["components"]["securitySchemes"])


class Generator:
    """Requests from the document: each operation with and without a token, with minimal and full
    bodies of sample values, and with every body property of the wrong type."""

    def __init__(self, document: dict[str, Any], values: dict[str, str]) -> None:
        self.document = document
        self.values = values

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema or "allOf" in schema:
            if "$ref" in schema:
                name = schema["$ref"].rsplit("/", 1)[1]
                schema = self.document["components"]["schemas"][name]
            else:
                schema = schema["allOf"][0]
        return schema

    def sample(self, schema: dict[str, Any], name: str = "", *, full: bool = False, depth: int = 0) -> Any:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if "enum" in schema:
            return next((v for v in schema["enum"] if not v.endswith("UNSPECIFIED")), schema["enum"][0])
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if not props:
                return {"note": "sample"}
            chosen = [p for p in props if (full or p in schema.get("required", ()))
                      and not props[p].get("readOnly")]
            return {p: self.sample(props[p], p, full=full, depth=depth + 1) for p in chosen if depth < 4}
        if kind == "array":
            return [self.sample(schema.get("items", {}), name, full=full, depth=depth + 1)]
        if kind == "boolean":
            return True
        if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
            return 1
        if kind == "number":
            return 1.5
        return self.values.get(name, self.values["url"] if "url" in name.lower() or name == "webhook" else "sample")

    def wrong(self, schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
        schema = self.resolve(schema)
        base = self.sample(schema, full=True)
        for prop, sub in schema.get("properties", {}).items():
            kind = self.resolve(sub).get("type")
            yield {**base, prop: 12345 if kind in ("string", "object", "array") else "not-a-number"}

    def requests(self) -> Iterator[tuple[str, str, dict[str, Any], str, bytes | None, bool]]:
        for path, verbs in self.document["paths"].items():
            for verb, operation in verbs.items():
                url = path
                for param in operation.get("parameters", []):
                    if param["in"] == "path":
                        url = url.replace("{" + param["name"] + "}", self.values.get(param["name"], "nosuch"))
                query = {p["name"]: self.sample(p["schema"], p["name"]) for p in operation.get("parameters", [])
                         if p["in"] == "query" and p["required"]}
                target = url + (f"?{urlencode(query)}" if query else "")
                bodies: list[bytes | None] = [None]
                body = operation.get("requestBody", {}).get("content", {}).get("application/json")
                if body is not None:
                    schema = body["schema"]
                    bodies = [json.dumps(b).encode() for b in (
                        self.sample(schema), self.sample(schema, full=True), *self.wrong(schema))]
                for payload in bodies:
                    yield verb.upper(), target, operation, path, payload, True
                if operation.get("security", self.document["security"]):
                    yield verb.upper(), target, operation, path, bodies[0], False


def check_response(document: dict[str, Any], operation: dict[str, Any], response: Response) -> None:
    responses = operation["responses"]
    spec = responses.get(str(response.status)) or responses["default"]
    content = spec.get("content")
    if not content or response.status == 304:
        return
    media = next(iter(content))
    if media.startswith("image/"):
        assert response.headers["content-type"].startswith("image/"), response.headers
        return
    assert response.headers["content-type"].startswith("application/json"), response.headers
    validator = Draft202012Validator({**content[media]["schema"], "components": document["components"]})
    lines = response.body.decode().splitlines() if b"\n{" in response.body else [response.body.decode()]
    for line in lines:
        errors = [e.message for e in validator.iter_errors(json.loads(line))]
        assert not errors, (response.status, errors[:3], line[:300])


def test_generated_requests_get_no_5xx_and_documented_responses(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str, document: dict[str, Any]
) -> None:
    url = origin.serve(f"/{unique}/doc.png", images.png())
    job = stack.wait_job(stack.import_batch(org["token"], [{"url": url, "id": unique, "fileName": "d"}]),
                         org["token"])
    values = {"id": job["id"], "media_id": job["images"][0]["image"]["mediaId"], "rendition": "mini",
              "album_id": f"album-{unique}", "url": url, "systemName": "generated"}
    checked = 0
    succeeded: set[tuple[str, str]] = set()
    for method, target, operation, _path, payload, with_token in Generator(document, values).requests():
        response = stack.request(method, target, raw=payload, token=org["token"] if with_token else None)
        assert response.status < 500, (method, target, response.status, response.body[:300])
        check_response(document, operation, response)
        checked += 1
        if response.status == 200:
            succeeded.add((method, _path))
    assert checked > 50
    assert len(succeeded) >= 12, succeeded  # the document's sample requests mostly work
