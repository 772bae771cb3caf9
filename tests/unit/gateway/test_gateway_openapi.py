"""The OpenAPI document generated from the protos, and the edge's route table that must agree with them.
(Its validity under openapi-spec-validator is checked on the served copy, tests/e2e/test_openapi.py.)"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gateway import openapi
from gateway.buf_breaking import ACCEPTED, is_accepted
from gateway.protos import DESCRIPTOR, REPO

# Every REST path of the seeds (../shared/seeds), in OpenAPI's template spelling.
SEED_PATHS = {
    "/api/v1/imports": "post",
    "/api/v1/import/images": "post",
    "/api/v1/import/images/status": "get",
    "/api/v1/albums/{album_id}/images": "post",
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return openapi.build(DESCRIPTOR, tmp_path_factory.mktemp("openapi") / "openapi.json")


def test_every_seed_path_is_present(document: dict[str, Any]) -> None:
    for path, verb in SEED_PATHS.items():
        assert verb in document["paths"][path], path


def test_both_token_styles_are_security_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert (schemes["sharinpixToken"]["type"], schemes["sharinpixToken"]["in"]) == ("apiKey", "header")
    assert document["paths"]["/api/v1/images/{media_id}/{rendition}"]["get"]["security"] == []


def test_schemas_use_json_names_comments_and_the_seed_time_format(document: dict[str, Any]) -> None:
    job = document["components"]["schemas"]["ImportJob"]
    assert {"finished", "state", "id", "startedAt", "images", "overview", "finishedAt"} <= set(job["properties"])
    started = job["properties"]["startedAt"]
    assert re.fullmatch(started["pattern"], "2020-01-01 13:45:12") and "UTC" in started["description"]
    assert "batch import" in job["description"]
    state = document["components"]["schemas"]["ImportJob.State"]
    assert {"started", "success", "failed"} <= set(state["enum"])
    create = document["paths"]["/api/v1/import/images"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"systemName", "images"}
    assert create["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith("UsageLimitExceeded")
    assert create["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_form_endpoints_accept_forms(document: dict[str, Any]) -> None:
    content = document["paths"]["/api/v1/imports"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}


def test_error_shape_names_http_status_and_grpc_status_separately(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "status", "message", "requestId", "details"}


def _lua_routes() -> set[tuple[str, str]]:
    source = (REPO / "gateway" / "edge.lua").read_text(encoding="utf-8")
    block = source[source.index("local ROUTES = {"):source.index("\n}\n", source.index("local ROUTES = {"))]
    return set(re.findall(r'\{"(GET|POST)", "([^"]+)"', block))


def test_the_edge_route_table_matches_the_protos(document: dict[str, Any]) -> None:
    from_protos = {(verb.upper(), path) for path, verbs in document["paths"].items() for verb in verbs}
    assert _lua_routes() == from_protos


def test_served_document_is_the_built_one() -> None:
    built = json.loads((REPO / "build" / "openapi.json").read_text(encoding="utf-8"))
    assert built["paths"].keys() >= SEED_PATHS.keys()


def test_buf_breaking_accepts_only_the_started_at_change() -> None:
    assert len(ACCEPTED) == 1
    path = "proto/pixport/v1/import_job.proto"
    message = 'Field "4" with name "started_at" on message "ImportJob" changed type from "message" to "string".'
    assert is_accepted({"type": "FIELD_SAME_TYPE", "path": path, "message": message})
    other = message.replace("started_at", "id")
    assert not is_accepted({"type": "FIELD_SAME_TYPE", "path": path, "message": other})
    assert not is_accepted({"type": "FIELD_NO_DELETE", "path": path, "message": message})
