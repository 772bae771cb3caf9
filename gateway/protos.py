"""Build the protos: Python modules (into server/pixport/v1), the descriptor set Envoy's
transcoder reads (with imports, and google.rpc error details so they survive transcoding), and the
OpenAPI document generated from it (gateway/openapi.py)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "proto"
DESCRIPTOR = REPO / "build" / "pixport.pb"


def googleapis_include() -> Path:
    """The googleapis-common-protos wheel's site-packages dir, holding google/api and google/rpc."""
    import google.api  # noqa: F401  (the wheel's package)

    return Path(next(iter(sys.modules["google.api"].__path__))).parent.parent


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "pixport").rglob("*.proto"))


def build() -> None:
    wkt = str(resources.files("grpc_tools") / "_proto")
    includes = [f"-I{PROTO_ROOT}", f"-I{googleapis_include()}", f"-I{wkt}"]
    files = proto_files()
    out = REPO / "server"
    code = protoc.main(["protoc", *includes, f"--python_out={out}", f"--pyi_out={out}",
                        f"--grpc_python_out={out}", *files])
    if code != 0:
        raise SystemExit(f"protoc failed generating Python ({code})")
    for package in {Path(f).parent for f in files}:
        (out / package / "__init__.py").touch()
    DESCRIPTOR.parent.mkdir(exist_ok=True)
    code = protoc.main(["protoc", *includes, "--include_imports", "--include_source_info",
                        f"--descriptor_set_out={DESCRIPTOR}", *files, "google/rpc/error_details.proto"])
    if code != 0:
        raise SystemExit(f"protoc failed building the descriptor ({code})")
    from gateway import openapi  # it reads the descriptor built just now

    openapi.build()


if __name__ == "__main__":
    build()
    print(f"protos built: server/pixport/v1, {DESCRIPTOR.relative_to(REPO)}, build/openapi.json")
