"""The SharinPix dialect: single imports into albums, and direct-upload registrations."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pixport.domain.auth import Principal
from pixport.domain.batch import has_nul, json_size
from pixport.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from pixport.domain.ids import looks_like_id, new_job_id, new_media_id, new_uuid
from pixport.domain.jobs import Admission
from pixport.domain.quota import admission
from pixport.domain.records import ImageRecord
from pixport.fetch.urls import validate_url


@dataclass(frozen=True)
class FetchPlan:
    """How the worker gets the bytes of a single import."""

    url: str
    connector: str  # "url", or a connector name such as "salesforce"
    connector_ref: str | None  # the connector's id for the bytes
    headers: dict[str, str] | None  # the caller's headers for a URL fetch

@dataclass(frozen=True)
class SingleImportRow:
    id: str
    organization_id: str
    album_id: str
    import_type: str | None
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    item_status: str
    reason: str | None
    image_id: str | None
    pending_headers: dict[str, str] | None = None  # the caller's headers while the fetch is still to come


class SharinpixStore(Protocol):
    """What the dialect needs of the store (implemented by store.sharinpix.SharinpixStore)."""

    async def create_single_import(
        self, *, import_id: str, job_id: str, organization_id: str, album_id: str, import_type: str | None,
        params: dict[str, Any], title: str, metadata: dict[str, Any], plan: FetchPlan, admit: Admission,
    ) -> datetime: ...

    async def get_single_import(self, organization_id: str, import_id: str) -> SingleImportRow | None: ...

    async def register_direct_upload(
        self, *, image_id: str, job_id: str, organization_id: str, album_id: str, title: str,
        metadata: dict[str, Any], source_url: str, format_name: str, mime_type: str, width: int, height: int,
        byte_size: int, analysis: dict[str, Any], provider_info: dict[str, Any], admit: Admission,
    ) -> ImageRecord: ...

    async def list_album_images(self, organization_id: str, album_id: str, limit: int) -> list[ImageRecord]: ...

    async def get_album_image(self, organization_id: str, album_id: str, image_id: str) -> ImageRecord | None: ...

    async def connector(self, organization_id: str, kind: str) -> dict[str, Any] | None: ...


DEFAULT_ALBUM = "default"
MAX_ALBUM_ID = 255
MAX_HEADERS = 32
MAX_HEADER_VALUE = 8192
MAX_METADATA_BYTES = 16384
REDACTED = "[FILTERED]"
# Header names whose values are credentials: kept for the fetch, never shown back.
_SECRET_HEADER = re.compile(r"auth|token|key|secret|cookie|session|password|signature|credential", re.IGNORECASE)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
_SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")
_CLOUDINARY_FORMATS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                       "webp": "image/webp", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class ImportParams:
    album_id: str = ""
    filename: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    metadatas: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    import_type: str = ""
    attachment_id: str = ""


@dataclass(frozen=True)
class ImportView:
    row: SingleImportRow

    @property
    def params(self) -> dict[str, Any]:
        """The params echo. Caller headers are kept only on the queued item until it is final (then the
        database has none left), so they are echoed (redacted) while it is pending and never after."""
        if not self.row.pending_headers:
            return dict(self.row.params)
        echoed: dict[str, Any] = {}
        for key, value in self.row.params.items():
            if key in ("attachment_id", "controller", "action") and "headers" not in echoed:
                echoed["headers"] = redact_headers(self.row.pending_headers)
            echoed[key] = value
        return echoed

    @property
    def status(self) -> str:
        return {"success": "done", "skipped": "done", "failed": "failed", "cancelled": "failed"}.get(
            self.row.item_status, "pending"
        )


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if _SECRET_HEADER.search(name) else value for name, value in headers.items()}


def cloudinary_signature(public_id: str, version: str, api_secret: str) -> str:
    """Cloudinary's upload-response signature: SHA-1 of `public_id=…&version=…` followed by the API secret."""
    return hashlib.sha1(f"public_id={public_id}&version={version}{api_secret}".encode()).hexdigest()  # noqa: S324


def _album(album_id: str, violations: list[FieldViolation], name: str = "album_id") -> str:
    album = album_id.strip() or DEFAULT_ALBUM
    if len(album) > MAX_ALBUM_ID or "\x00" in album or "/" in album:
        violations.append(FieldViolation(name, f"must be 1 to {MAX_ALBUM_ID} characters, without '/' or NUL"))
    return album


def _metadata(value: dict[str, Any], name: str, violations: list[FieldViolation]) -> None:
    if json_size(value) > MAX_METADATA_BYTES:
        violations.append(FieldViolation(name, f"must be at most {MAX_METADATA_BYTES} bytes as JSON"))
    elif has_nul(value):
        violations.append(FieldViolation(name, "must not contain NUL characters"))


def _text(value: str, name: str, violations: list[FieldViolation], limit: int = 1024) -> str:
    if len(value) > limit or "\x00" in value:
        violations.append(FieldViolation(name, f"must be at most {limit} characters, without NUL"))
    return value


class SingleImports:
    def __init__(self, store: SharinpixStore) -> None:
        self._store = store

    async def create(self, principal: Principal, params: ImportParams) -> tuple[str, datetime, dict[str, Any]]:
        """Validate, authorise, store; returns (import id, created at, params as echoed)."""
        violations: list[FieldViolation] = []
        album_id = _album(params.album_id, violations)
        _text(params.filename, "filename", violations)
        _text(params.url, "url", violations, 8192)
        _metadata(params.metadata, "metadata", violations)
        _metadata(params.metadatas, "metadatas", violations)
        import_type = params.import_type.strip().lower()
        url, connector, connector_ref = "", "url", None
        if import_type == "salesforce":
            if not _SALESFORCE_ID.match(params.attachment_id):
                violations.append(FieldViolation("attachment_id", "must be a 15 or 18 character Salesforce id"))
            connector, connector_ref = "salesforce", params.attachment_id
            url = f"salesforce:{params.attachment_id}"
        elif import_type:
            violations.append(FieldViolation("import_type", "must be empty (URL import) or 'salesforce'"))
        elif not params.url.strip():
            violations.append(FieldViolation("url", "is required for a URL import"))
        else:
            try:
                url = validate_url(params.url.strip())
            except ValueError as error:
                violations.append(FieldViolation("url", str(error)))
        headers = self._headers(params.headers, violations)
        if violations:
            raise InvalidArgument(violations)
        principal.require_upload(album_id)
        echoed = self._echo(params, album_id)
        import_id, job_id = new_uuid(), new_job_id()

        created_at = await self._store.create_single_import(
            import_id=import_id, job_id=job_id, organization_id=principal.organization_id, album_id=album_id,
            # Stored without the caller's headers: those live on the queued item only, until it is final.
            import_type=import_type or None, params={k: v for k, v in echoed.items() if k != "headers"},
            title=params.filename or import_id,
            metadata=params.metadata or params.metadatas,
            plan=FetchPlan(url, connector, connector_ref, headers or None),
            admit=admission(1),
        )
        return import_id, created_at, echoed

    @staticmethod
    def _headers(headers: Mapping[str, str], violations: list[FieldViolation]) -> dict[str, str]:
        if len(headers) > MAX_HEADERS:
            violations.append(FieldViolation("headers", f"at most {MAX_HEADERS} headers"))
            return {}
        for name, value in headers.items():
            if not _HEADER_NAME.match(name) or name.lower() in _FORBIDDEN_HEADERS:
                violations.append(FieldViolation(f"headers[{name[:64]}]", "is not a header name pixport may send"))
            elif len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\x00"):
                violations.append(FieldViolation(f"headers[{name[:64]}]", "value too long or has control characters"))
        return dict(headers)

    @staticmethod
    def _echo(params: ImportParams, album_id: str) -> dict[str, Any]:
        echoed: dict[str, Any] = {"album_id": album_id}
        if params.filename:
            echoed["filename"] = params.filename
        if params.import_type:
            echoed["import_type"] = params.import_type
        if params.metadata:
            echoed["metadata"] = params.metadata
        if params.metadatas:
            echoed["metadatas"] = params.metadatas
        if params.url:
            echoed["url"] = params.url
        if params.headers:
            echoed["headers"] = redact_headers(params.headers)
        if params.attachment_id:
            echoed["attachment_id"] = params.attachment_id
        echoed["controller"] = "api/v1/imports"
        echoed["action"] = "create"
        return echoed

    async def get(self, principal: Principal, import_id: str) -> ImportView:
        row = await self._store.get_single_import(principal.organization_id, import_id) \
            if looks_like_id(import_id) else None
        if row is None:
            raise NotFound(f"import {import_id[:64]!r} not found")
        principal.require_album(row.album_id)
        return ImportView(row)


MAX_DIMENSION = 1_000_000
MAX_BYTES = 1 << 40


def _int(info: Mapping[str, Any], key: str, violations: list[FieldViolation], limit: int) -> int:
    raw = info.get(key, 0)
    try:
        number = float(str(raw))
    except ValueError:
        violations.append(FieldViolation(f"cloudinary[{key}]", "must be a number"))
        return 0
    if not 0 <= number <= limit:  # also false for NaN
        violations.append(FieldViolation(f"cloudinary[{key}]", f"must be between 0 and {limit}"))
        return 0
    return int(number)


class AlbumImages:
    def __init__(self, store: SharinpixStore) -> None:
        self._store = store

    async def register(
        self, principal: Principal, album_id: str, upload: dict[str, Any], metadatas: dict[str, Any]
    ) -> ImageRecord:
        violations: list[FieldViolation] = []
        album = _album(album_id, violations)
        _metadata(metadatas, "metadatas", violations)
        for key in ("public_id", "version", "signature", "secure_url"):
            if not isinstance(upload.get(key), str | int | float) or not str(upload.get(key)).strip():
                violations.append(FieldViolation(f"cloudinary[{key}]", "is required"))
        secure_url = ""
        if not violations:
            try:
                secure_url = validate_url(str(upload["secure_url"]))
            except ValueError as error:
                violations.append(FieldViolation("cloudinary[secure_url]", str(error)))
        if json_size(upload) > 65536 or has_nul(upload):
            violations.append(FieldViolation("cloudinary", "must be at most 64 KiB as JSON, without NUL"))
        width = _int(upload, "width", violations, MAX_DIMENSION)
        height = _int(upload, "height", violations, MAX_DIMENSION)
        byte_size = _int(upload, "bytes", violations, MAX_BYTES)
        if secure_url and f"/v{upload['version']}/{upload['public_id']}" not in secure_url:
            # The signature covers public_id and version only: the URL must be that upload's URL.
            violations.append(FieldViolation("cloudinary[secure_url]", "is not the URL of the signed upload"))
        if violations:
            raise InvalidArgument(violations)
        principal.require_upload(album)
        config = await self._store.connector(principal.organization_id, "cloudinary")
        if not config or not config.get("api_secret"):
            raise FailedPrecondition("Cloudinary is not configured for this organisation "
                                     "(pixport connector cloudinary --org ORG --api-secret S)")
        expected = cloudinary_signature(str(upload["public_id"]), str(upload["version"]), str(config["api_secret"]))
        if not hmac.compare_digest(expected.encode(), str(upload["signature"]).lower().encode()):
            raise InvalidArgument([FieldViolation("cloudinary[signature]",
                                                  "does not match the upload (forged or altered result)")])
        image_format = str(upload.get("format", "")).lower()
        exif = upload.get("image_metadata") if isinstance(upload.get("image_metadata"), dict) else {}

        return await self._store.register_direct_upload(
            image_id=new_media_id(), job_id=new_job_id(), organization_id=principal.organization_id, album_id=album,
            title=str(upload.get("original_filename", "")), metadata=metadatas, source_url=secure_url,
            format_name=image_format, mime_type=_CLOUDINARY_FORMATS.get(image_format, ""),
            width=width, height=height, byte_size=byte_size,
            analysis={"exif": exif}, provider_info=upload, admit=admission(1),
        )

    async def list_images(self, principal: Principal, album_id: str, limit: int) -> list[ImageRecord]:
        violations: list[FieldViolation] = []
        album = _album(album_id, violations)
        if violations:
            raise InvalidArgument(violations)
        principal.require_album(album)
        return await self._store.list_album_images(principal.organization_id, album, limit)

    async def get(self, principal: Principal, album_id: str, image_id: str) -> ImageRecord:
        violations: list[FieldViolation] = []
        _album(album_id, violations)
        if violations:
            raise InvalidArgument(violations)
        principal.require_album(album_id)
        found = await self._store.get_album_image(principal.organization_id, album_id, image_id) \
            if looks_like_id(image_id) else None
        if found is None:
            raise NotFound(f"image {image_id[:64]!r} not found in album {album_id[:64]!r}")
        return found
