"""`make buf-lint`: lint the protos with buf, resolving google/api and google/rpc from the
googleapis-common-protos wheel (copied into build/third_party) instead of the Buf registry."""

from __future__ import annotations

import shutil
import subprocess
import sys

from gateway.protos import REPO, googleapis_include

THIRD_PARTY = REPO / "build" / "third_party"


def stage_googleapis() -> None:
    source = googleapis_include() / "google"
    for package in ("api", "rpc"):
        target = THIRD_PARTY / "google" / package
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for proto in (source / package).glob("*.proto"):
            shutil.copy2(proto, target / proto.name)


def main() -> int:
    stage_googleapis()
    buf = REPO / "node_modules" / ".bin" / "buf"
    result = subprocess.run([str(buf), "lint"], cwd=REPO, check=False)
    if result.returncode == 0:
        print("buf lint: clean")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
