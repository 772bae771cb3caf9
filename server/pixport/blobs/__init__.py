"""Content-addressed blob storage: local files or S3-compatible object storage, chosen by
PIXPORT_BLOB_URL (unset or `file://[PATH]` → files, `s3://BUCKET[/PREFIX]` → S3)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pixport.blobs.base import BlobNotFound, BlobStore, BlobStoreUnavailable, ManagedBlobStore, blob_key
from pixport.blobs.files import FileBlobStore

if TYPE_CHECKING:
    from pixport.config import Settings

__all__ = [
    "BlobNotFound", "BlobStore", "BlobStoreUnavailable", "FileBlobStore", "ManagedBlobStore", "blob_key",
    "from_settings", "from_url",
]


def from_url(url: str, default_dir: Path) -> ManagedBlobStore:
    raw = url.strip()
    if not raw:
        return FileBlobStore(default_dir)
    parts = urlsplit(raw)
    if parts.scheme == "file" and not parts.netloc:
        return FileBlobStore(Path(parts.path).resolve() if parts.path else default_dir)
    if parts.scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
        from pixport.blobs.s3 import S3BlobStore

        return S3BlobStore(parts.netloc, parts.path.strip("/"))
    raise ValueError(f"PIXPORT_BLOB_URL must be file://PATH or s3://BUCKET/PREFIX, got {raw!r}")


def from_settings(settings: Settings) -> ManagedBlobStore:
    return from_url(settings.blob_url, settings.blob_dir)
