"""Settings.from_env: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pixport.config import Settings


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.http_port == 8080
    assert settings.grpc_port == 50051
    assert settings.admin_port == 9901
    assert settings.data_dir == (tmp_path / ".pixport").resolve()
    assert settings.data_dir.is_absolute()
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.configured_public_url is None
    assert settings.database_url is None
    assert settings.fetch_allow_cidrs == ""
    assert settings.worker_concurrency == 32
    assert settings.worker_processes == 1
    assert settings.pixel_processes == (os.cpu_count() or 2)
    assert settings.lease_seconds == 120.0
    assert settings.max_image_bytes == 25 * 1024 * 1024
    assert settings.max_image_pixels == 50_000_000
    assert settings.max_animation_frames == 100
    assert settings.grpc_host == "127.0.0.1"
    assert settings.http_host == "127.0.0.1"
    assert settings.blob_dir == settings.data_dir / "blobs"
    assert settings.postgres_dir == settings.data_dir / "postgres"


def test_overrides(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "PIXPORT_HTTP_PORT": "18080",
        "PIXPORT_GRPC_PORT": "15051",
        "PIXPORT_ADMIN_PORT": "19901",
        "PIXPORT_DATA_DIR": str(tmp_path / "data"),
        "PIXPORT_PUBLIC_URL": "https://images.example.com/",
        "DATABASE_URL": "postgresql://u@db/pixport",
        "PIXPORT_FETCH_ALLOW_CIDRS": "127.0.0.0/8",
        "PIXPORT_WORKER_CONCURRENCY": "3",
        "PIXPORT_WORKER_PROCESSES": "2",
        "PIXPORT_PIXEL_PROCESSES": "5",
        "PIXPORT_LEASE_SECONDS": "0.5",
        "PIXPORT_MAX_IMAGE_BYTES": "1000",
        "PIXPORT_MAX_IMAGE_PIXELS": "2000",
        "PIXPORT_MAX_ANIMATION_FRAMES": "7",
        "PIXPORT_GRPC_HOST": "0.0.0.0",  # noqa: S104
        "PIXPORT_HTTP_HOST": "::",
    })
    assert (settings.http_port, settings.grpc_port, settings.admin_port) == (18080, 15051, 19901)
    assert settings.data_dir == tmp_path / "data"
    assert settings.public_url == "https://images.example.com"
    assert settings.configured_public_url == "https://images.example.com"
    assert settings.database_url == "postgresql://u@db/pixport"
    assert settings.fetch_allow_cidrs == "127.0.0.0/8"
    assert (settings.worker_concurrency, settings.worker_processes, settings.pixel_processes) == (3, 2, 5)
    assert settings.lease_seconds == 0.5
    assert (settings.max_image_bytes, settings.max_image_pixels, settings.max_animation_frames) == (1000, 2000, 7)
    assert (settings.grpc_host, settings.http_host) == ("0.0.0.0", "::")  # noqa: S104


def test_the_default_public_url_follows_the_http_port() -> None:
    assert Settings.from_env({"PIXPORT_HTTP_PORT": "9999"}).public_url == "http://127.0.0.1:9999"


def test_blank_values_mean_the_default() -> None:
    settings = Settings.from_env({
        "PIXPORT_HTTP_PORT": "  ", "PIXPORT_LEASE_SECONDS": "", "DATABASE_URL": "  ", "PIXPORT_PUBLIC_URL": " ",
    })
    assert settings.http_port == 8080
    assert settings.lease_seconds == 120.0
    assert settings.database_url is None
    assert settings.configured_public_url is None


def test_values_are_stripped() -> None:
    settings = Settings.from_env({"PIXPORT_GRPC_PORT": " 6000 ", "DATABASE_URL": " postgresql://x/y "})
    assert settings.grpc_port == 6000
    assert settings.database_url == "postgresql://x/y"


@pytest.mark.parametrize(
    "name",
    [
        "PIXPORT_HTTP_PORT", "PIXPORT_GRPC_PORT", "PIXPORT_ADMIN_PORT", "PIXPORT_WORKER_CONCURRENCY",
        "PIXPORT_WORKER_PROCESSES", "PIXPORT_PIXEL_PROCESSES", "PIXPORT_MAX_IMAGE_BYTES",
        "PIXPORT_MAX_IMAGE_PIXELS", "PIXPORT_MAX_ANIMATION_FRAMES",
    ],
)
@pytest.mark.parametrize("raw", ["eighty", "8080.0", "1e3", "0x50"])
def test_invalid_integers_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be an integer, got {raw!r}$"):
        Settings.from_env({name: raw})


@pytest.mark.parametrize("raw", ["soon", "1,5", "2 minutes"])
def test_an_invalid_lease_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match=f"^PIXPORT_LEASE_SECONDS must be a number, got {raw!r}$"):
        Settings.from_env({"PIXPORT_LEASE_SECONDS": raw})
