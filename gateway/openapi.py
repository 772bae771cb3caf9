"""Build the OpenAPI 3.1 document of the REST API from the protos' descriptor set (`make protos`):
paths and verbs from the `google.api.http` annotations, schemas from the messages with their JSON names
and comments, the one error shape, and the security schemes of both token styles.

Hand-written rather than protoc-gen-openapiv2 (Go, Swagger 2.0) or gnostic's protoc-gen-openapi (Go):
no Go toolchain is needed, the output is OpenAPI 3.1, and the document also describes what the edge adds
(the error shape, the seed's 429 list body, the form dialect, the bytes of renditions)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from gateway.protos import DESCRIPTOR, REPO

OPENAPI = REPO / "build" / "openapi.json"
PACKAGE = "pixport.v1"
FDP = descriptor_pb2.FieldDescriptorProto
Schema = dict[str, Any]

# Requests the SharinPix documents send form-encoded (bracket keys; the edge turns them into JSON).
FORM_PATHS = {"/api/v1/imports", "/api/v1/albums/{album_id}/images"}
# Capability URLs and probes: no token.
PUBLIC_PATHS = {"/api/v1/images/{media_id}/{rendition}", "/ready", "/api/v1/openapi.json"}
SEED_TIME = "`YYYY-MM-DD HH:MM:SS` in UTC (e.g. `2020-01-01 13:45:12`), as the batch import API documents it"

SCALARS: dict[int, Schema] = {
    FDP.TYPE_DOUBLE: {"type": "number"}, FDP.TYPE_FLOAT: {"type": "number"},
    FDP.TYPE_INT32: {"type": "integer", "format": "int32"}, FDP.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FDP.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FDP.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    # proto3 JSON prints 64-bit integers as strings (and accepts both).
    FDP.TYPE_INT64: {"type": ["string", "integer"], "format": "int64"},
    FDP.TYPE_SINT64: {"type": ["string", "integer"], "format": "int64"},
    FDP.TYPE_SFIXED64: {"type": ["string", "integer"], "format": "int64"},
    FDP.TYPE_UINT64: {"type": ["string", "integer"], "format": "int64"},
    FDP.TYPE_FIXED64: {"type": ["string", "integer"], "format": "int64"},
    FDP.TYPE_BOOL: {"type": "boolean"}, FDP.TYPE_STRING: {"type": "string"},
    FDP.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
WELL_KNOWN: dict[str, Schema] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                             "additionalProperties": True},
}

ERROR_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "The one error shape of every non-2xx answer (except the quota refusal's documented list), "
                       "whether the edge or the server answered.",
        "required": ["code", "status", "message", "requestId", "details"],
        "properties": {
            "code": {"type": "integer", "description": "The HTTP status code."},
            "status": {"type": "string", "description": "The gRPC status name (`INVALID_ARGUMENT`, `NOT_FOUND`, ...).",
                       "enum": ["CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                "UNAUTHENTICATED"]},
            "message": {"type": "string", "description": "What went wrong, for a person."},
            "requestId": {"type": "string", "description": "The request's id (also in `x-request-id`)."},
            "details": {"type": "array", "description": "google.rpc error details, each with its `@type`.",
                        "items": {"$ref": "#/components/schemas/ErrorDetail"}},
        },
    },
    "ErrorDetail": {
        "type": "object", "required": ["@type"], "additionalProperties": True,
        "description": "A google.rpc detail: `ErrorInfo` (`reason`, `domain`), `BadRequest` (`fieldViolations`: "
                       "`field` as a JSON path such as `images[0].url`, `description`), `QuotaFailure`, `RetryInfo`.",
        "properties": {
            "@type": {"type": "string"},
            "reason": {"type": "string"}, "domain": {"type": "string"},
            "fieldViolations": {"type": "array", "items": {
                "type": "object", "required": ["field", "description"],
                "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}},
        },
    },
    "UsageLimitExceeded": {
        "type": "array", "minItems": 1, "maxItems": 1,
        "description": "The batch import API's documented 429 body (quota exceeded).",
        "items": {"type": "object", "required": ["status", "error", "error_details"], "properties": {
            "status": {"const": 429}, "error": {"const": "Usage Limit Exceeded"},
            "error_details": {"type": "object", "required": ["message"],
                              "properties": {"message": {"type": "string"}}}}},
    },
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


class Document:
    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto]) -> None:
        self.files = files
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[str, str] = {}
        for file in files:
            self._index(file)
        self.schemas: dict[str, Schema] = {}

    # --- indexing ---------------------------------------------------------------------------------

    def _index(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        by_path = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
                   if loc.leading_comments}
        prefix = f".{file.package}"

        def walk(messages: Any, scope: str, path: tuple[int, ...]) -> None:
            for index, message in enumerate(messages):
                name = f"{scope}.{message.name}"
                here = (*path, index)
                self.messages[name] = message
                self.comments[name] = by_path.get(here, "")
                for field_index, field in enumerate(message.field):
                    self.comments[f"{name}#{field.name}"] = by_path.get((*here, 2, field_index), "")
                for enum_index, enum in enumerate(message.enum_type):
                    self.enums[f"{name}.{enum.name}"] = enum
                    self.comments[f"{name}.{enum.name}"] = by_path.get((*here, 4, enum_index), "")
                walk(message.nested_type, name, (*here, 3))

        walk(file.message_type, prefix, (4,))
        for index, enum in enumerate(file.enum_type):
            self.enums[f"{prefix}.{enum.name}"] = enum
            self.comments[f"{prefix}.{enum.name}"] = by_path.get((5, index), "")
        for s_index, service in enumerate(file.service):
            self.comments[f"{prefix}.{service.name}"] = by_path.get((6, s_index), "")
            for m_index, method in enumerate(service.method):
                self.comments[f"{prefix}.{service.name}.{method.name}"] = by_path.get((6, s_index, 2, m_index), "")

    # --- schemas ----------------------------------------------------------------------------------

    @staticmethod
    def schema_name(full_name: str) -> str:
        return full_name.removeprefix(f".{PACKAGE}.").lstrip(".")

    def type_schema(self, type_name: str) -> Schema:
        if type_name in WELL_KNOWN:
            return dict(WELL_KNOWN[type_name])
        name = self.schema_name(type_name)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursion
            if type_name in self.enums:
                enum = self.enums[type_name]
                values = [v.name for v in enum.value]
                self.schemas[name] = {"type": "string", "enum": values,
                                      "description": self.comments.get(type_name, "")}
            else:
                self.schemas[name] = self.message_schema(type_name)
        return _ref(name)

    def field_schema(self, field: descriptor_pb2.FieldDescriptorProto) -> Schema:
        if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
            entry = self.messages.get(field.type_name)
            if entry is not None and entry.options.map_entry:
                return {"type": "object", "additionalProperties": self.field_schema(entry.field[1])}
            schema = self.type_schema(field.type_name)
        else:
            schema = dict(SCALARS[field.type])
        if field.label == FDP.LABEL_REPEATED:
            return {"type": "array", "items": schema}
        return schema

    def message_schema(self, type_name: str, *, skip: frozenset[str] = frozenset()) -> Schema:
        message = self.messages[type_name]
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in message.field:
            if field.name in skip:
                continue
            schema = self.field_schema(field)
            behaviors = list(field.options.Extensions[field_behavior_pb2.field_behavior])
            description = self.comments.get(f"{type_name}#{field.name}", "")
            if field.type == FDP.TYPE_STRING and field.name in ("started_at", "finished_at"):
                schema["pattern"] = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
                description = f"{description}\n\nFormat: {SEED_TIME}.".strip()
            if description:
                schema = {**schema, "description": description} if "$ref" not in schema else \
                    {"allOf": [schema], "description": description}
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(field.json_name)
            properties[field.json_name] = schema
        result: Schema = {"type": "object", "properties": properties,
                          "description": self.comments.get(type_name, "")}
        if required:
            result["required"] = required
        return result

    # --- paths ------------------------------------------------------------------------------------

    def methods(self) -> Iterator[tuple[str, descriptor_pb2.ServiceDescriptorProto,
                                        descriptor_pb2.MethodDescriptorProto]]:
        for file in self.files:
            if file.package != PACKAGE:
                continue
            for service in file.service:
                for method in service.method:
                    yield f".{file.package}.{service.name}", service, method

    def operation(self, service_name: str, method: descriptor_pb2.MethodDescriptorProto,
                  verb: str, path: str, rule: http_pb2.HttpRule, suffix: str) -> Schema:
        path_fields = set(re.findall(r"{([^}=]+)", path))
        request_type = self.messages[method.input_type]
        description = self.comments.get(f"{service_name}.{method.name}", "")
        operation: Schema = {
            "operationId": f"{service_name.rsplit('.', 1)[-1]}_{method.name}{suffix}",
            "summary": description.split("\n")[0].rstrip("."), "description": description,
            "tags": [service_name.rsplit(".", 1)[-1]], "parameters": [],
        }
        for field in request_type.field:
            comment = self.comments.get(f"{method.input_type}#{field.name}", "")
            if field.name in path_fields:
                operation["parameters"].append({"name": field.name, "in": "path", "required": True,
                                                "schema": self.field_schema(field), "description": comment})
            elif not rule.body and field.type != FDP.TYPE_MESSAGE:
                behaviors = list(field.options.Extensions[field_behavior_pb2.field_behavior])
                operation["parameters"].append({
                    "name": field.json_name, "in": "query", "required": field_behavior_pb2.REQUIRED in behaviors,
                    "schema": self.field_schema(field), "description": comment,
                })
        if rule.body:
            body_schema = self.message_schema(method.input_type, skip=frozenset(path_fields))
            content: Schema = {"application/json": {"schema": body_schema}}
            if path in FORM_PATHS:
                content[FORM] = {"schema": body_schema, "encoding": {
                    name: {"style": "deepObject", "explode": True}
                    for name, prop in body_schema["properties"].items()
                    if prop.get("type") == "object" or "$ref" in prop or "allOf" in prop}}
            operation["requestBody"] = {"required": bool(body_schema.get("required")), "content": content}
        responses: Schema = {}
        if method.output_type == ".google.api.HttpBody":
            responses["200"] = {"description": "The bytes (`Content-Type` says which image type).",
                                "headers": {"ETag": {"schema": {"type": "string"}}},
                                "content": {"image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}}}}
            responses["304"] = {"description": "Not modified (`If-None-Match` matched the `ETag`)."}
        elif method.server_streaming:
            responses["200"] = {"description": "Newline-delimited JSON: one `" + self.schema_name(method.output_type)
                                + "` per line, flushed as it happens.",
                                "content": {"application/json": {"schema": self.type_schema(method.output_type)}}}
        else:
            responses["200"] = {"description": "OK",
                                "content": {"application/json": {"schema": self.type_schema(method.output_type)}}}
        if method.name == "CreateImportJob":
            responses["429"] = {"description": "Over the organisation's images-per-day quota (`Retry-After` says "
                                               "when to retry).",
                                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                                "content": {"application/json": {"schema": _ref("UsageLimitExceeded")}}}
        responses["default"] = {"description": "Any error: the one error shape.",
                                "content": {"application/json": {"schema": _ref("Error")}}}
        operation["responses"] = responses
        if path in PUBLIC_PATHS:
            operation["security"] = []
        return operation

    def build(self) -> Schema:
        paths: dict[str, Schema] = {}
        for service_name, _service, method in self.methods():
            rule = method.options.Extensions[annotations_pb2.http]
            for index, binding in enumerate([rule, *rule.additional_bindings]):
                verb = binding.WhichOneof("pattern")
                if verb in (None, "custom"):
                    continue
                path = getattr(binding, verb)
                paths.setdefault(path, {})[verb] = self.operation(
                    service_name, method, verb, path, binding, f"_{index}" if index else "")
        paths["/api/v1/openapi.json"] = {"get": {
            "operationId": "OpenApi_Get", "summary": "This document", "tags": ["OpenApi"], "security": [],
            "responses": {"200": {"description": "The OpenAPI document of this API.",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }}
        tags = [{"name": service_name.rsplit(".", 1)[-1], "description": self.comments.get(service_name, "")}
                for service_name in sorted({name for name, _s, _m in self.methods()})]
        return {
            "openapi": "3.1.0",
            "info": {"title": "pixport", "version": "v1", "description": (
                "Image import service. REST is transcoded onto the gRPC API `pixport.v1`; this document is "
                "generated from its protos. Every error answers the `Error` shape, except the quota "
                "refusal of `POST /api/v1/import/images` (the documented `UsageLimitExceeded` list).")},
            "servers": [{"url": "/"}],
            "tags": tags,
            "security": [{"bearerAuth": []}, {"sharinpixToken": []}],
            "paths": dict(sorted(paths.items())),
            "components": {
                "schemas": dict(sorted({**self.schemas, **ERROR_SCHEMAS}.items())),
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                   "description": "`Authorization: Bearer <jwt>`: an HS256 JWT signed with an API "
                                                  "client's secret, `scope` `public-api:write` / `public-api:read` "
                                                  "(mint one with `pixport token`)."},
                    "sharinpixToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                       "description": "`Authorization: Token token=\"<jwt>\"` as in the SharinPix "
                                                      "documents: a client (`iss`) or user (`user_id`) token, "
                                                      "optionally album-scoped by `abilities`."},
                },
            },
        }


FORM = "application/x-www-form-urlencoded"


def build(descriptor: Path = DESCRIPTOR, output: Path = OPENAPI) -> Schema:
    files = list(descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file)
    document = Document(files).build()
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return document


if __name__ == "__main__":
    build()
    print(f"OpenAPI document: {OPENAPI.relative_to(REPO)}")
