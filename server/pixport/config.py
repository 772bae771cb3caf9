"""Settings from the environment: one frozen object, read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pixport.domain.webhooks import DEFAULT_SCHEDULE


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _schedule(environ: Mapping[str, str], name: str) -> tuple[float, ...]:
    raw = environ.get(name, "").strip()
    if not raw:
        return DEFAULT_SCHEDULE
    try:
        values = tuple(float(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(f"{name} must be comma-separated seconds, got {raw!r}") from None
    if not values or any(value < 0 for value in values):
        raise ValueError(f"{name} must list at least one non-negative delay")
    return values


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    http_port: int
    grpc_port: int
    admin_port: int
    data_dir: Path
    public_url: str
    configured_public_url: str | None
    database_url: str | None
    fetch_allow_cidrs: str
    worker_concurrency: int
    worker_processes: int
    pixel_processes: int
    lease_seconds: float
    max_image_bytes: int
    max_image_pixels: int
    max_animation_frames: int
    grpc_host: str
    http_host: str
    webhook_retry_schedule: tuple[float, ...]
    blob_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        http_port = _int(environ, "PIXPORT_HTTP_PORT", 8080)
        data_dir = Path(environ.get("PIXPORT_DATA_DIR", "").strip() or "./.pixport").resolve()
        public_url = environ.get("PIXPORT_PUBLIC_URL", "").strip().rstrip("/")
        cpus = os.cpu_count() or 2
        return cls(
            http_port=http_port,
            grpc_port=_int(environ, "PIXPORT_GRPC_PORT", 50051),
            admin_port=_int(environ, "PIXPORT_ADMIN_PORT", 9901),
            data_dir=data_dir,
            public_url=public_url or f"http://127.0.0.1:{http_port}",
            configured_public_url=public_url or None,
            database_url=environ.get("DATABASE_URL", "").strip() or None,
            fetch_allow_cidrs=environ.get("PIXPORT_FETCH_ALLOW_CIDRS", ""),
            worker_concurrency=_int(environ, "PIXPORT_WORKER_CONCURRENCY", 32),
            worker_processes=_int(environ, "PIXPORT_WORKER_PROCESSES", 1),
            pixel_processes=_int(environ, "PIXPORT_PIXEL_PROCESSES", cpus),
            lease_seconds=_float(environ, "PIXPORT_LEASE_SECONDS", 120.0),
            max_image_bytes=_int(environ, "PIXPORT_MAX_IMAGE_BYTES", 25 * 1024 * 1024),
            max_image_pixels=_int(environ, "PIXPORT_MAX_IMAGE_PIXELS", 50_000_000),
            max_animation_frames=_int(environ, "PIXPORT_MAX_ANIMATION_FRAMES", 100),
            grpc_host=environ.get("PIXPORT_GRPC_HOST", "127.0.0.1"),
            http_host=environ.get("PIXPORT_HTTP_HOST", "127.0.0.1"),
            webhook_retry_schedule=_schedule(environ, "PIXPORT_WEBHOOK_RETRY_SCHEDULE"),
            blob_url=environ.get("PIXPORT_BLOB_URL", "").strip(),
        )

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"
