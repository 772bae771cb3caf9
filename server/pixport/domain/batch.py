"""A batch import request and the rules it must satisfy before anything is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pixport.domain.errors import FieldViolation, InvalidArgument
from pixport.fetch.urls import validate_url

MAX_IMAGES = 1000
MAX_CONTEXT_BYTES = 8192
MAX_METADATA_BYTES = 16384
MAX_ID_LENGTH = 255
MAX_TITLE_LENGTH = 1024
MAX_SYSTEM_NAME_LENGTH = 255
MAX_URL_LENGTH = 4096
MAX_REQUEST_ID_LENGTH = 128
# Past this many, further violations add nothing for the caller and cost work.
MAX_VIOLATIONS = 50


@dataclass(frozen=True)
class ImageSpec:
    url: str
    external_id: str
    title: str
    metadata: dict[str, Any] = field(default_factory=dict)
    media_type: str = ""


@dataclass(frozen=True)
class BatchRequest:
    system_name: str
    images: tuple[ImageSpec, ...]
    webhook: str = ""
    context: dict[str, Any] | None = None
    request_id: str = ""


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def has_nul(value: Any) -> bool:
    """PostgreSQL's jsonb cannot hold U+0000 in keys or strings, and no caller means to send it."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


class _Collector:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field_path: str, description: str) -> None:
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(FieldViolation(field_path, description))

    def text(self, field_path: str, value: str, *, required: bool, max_length: int) -> bool:
        if not value.strip():
            if required:
                self.add(field_path, "is required")
            return False
        if "\x00" in value:
            self.add(field_path, "must not contain NUL characters")
            return False
        if len(value) > max_length:
            self.add(field_path, f"must be at most {max_length} characters")
            return False
        return True

    def url(self, field_path: str, value: str, *, required: bool) -> str | None:
        if not self.text(field_path, value, required=required, max_length=MAX_URL_LENGTH):
            return None
        try:
            return validate_url(value.strip())
        except ValueError as error:
            self.add(field_path, str(error))
            return None


def validate_batch(request: BatchRequest) -> BatchRequest:
    """Check every rule; raise InvalidArgument naming each offending field, or return the
    request with normalised URLs."""
    check = _Collector()
    check.text("systemName", request.system_name, required=True, max_length=MAX_SYSTEM_NAME_LENGTH)
    webhook = check.url("webhook", request.webhook, required=False) if request.webhook else ""
    if request.context is not None:
        if json_size(request.context) > MAX_CONTEXT_BYTES:
            check.add("context", f"must be at most {MAX_CONTEXT_BYTES} bytes as JSON")
        elif has_nul(request.context):
            check.add("context", "must not contain NUL characters")
    if request.request_id:
        check.text("requestId", request.request_id, required=False, max_length=MAX_REQUEST_ID_LENGTH)
    if not request.images:
        check.add("images", "is required and must contain at least one image")
    elif len(request.images) > MAX_IMAGES:
        check.add("images", f"must contain at most {MAX_IMAGES} images, got {len(request.images)}")
    normalised: list[ImageSpec] = []
    seen: dict[str, int] = {}
    for index, image in enumerate(request.images[:MAX_IMAGES]):
        prefix = f"images[{index}]"
        url = check.url(f"{prefix}.url", image.url, required=True)
        if check.text(f"{prefix}.id", image.external_id, required=True, max_length=MAX_ID_LENGTH):
            first = seen.setdefault(image.external_id, index)
            if first != index:
                check.add(f"{prefix}.id", f"duplicates images[{first}].id ({image.external_id!r}); ids must be unique")
        check.text(f"{prefix}.fileName", image.title, required=True, max_length=MAX_TITLE_LENGTH)
        check.text(f"{prefix}.mediaType", image.media_type, required=False, max_length=MAX_ID_LENGTH)
        if json_size(image.metadata) > MAX_METADATA_BYTES:
            check.add(f"{prefix}.metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        elif has_nul(image.metadata):
            check.add(f"{prefix}.metadata", "must not contain NUL characters")
        normalised.append(
            ImageSpec(url or image.url, image.external_id, image.title, image.metadata, image.media_type)
        )
    if check.violations:
        raise InvalidArgument(check.violations)
    return BatchRequest(
        system_name=request.system_name,
        images=tuple(normalised),
        webhook=webhook or "",
        context=request.context,
        request_id=request.request_id,
    )
