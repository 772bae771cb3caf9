"""`make buf-breaking` (part of `make test`): `buf breaking` of the protos against the previous commit of
main (`main^`; PIXPORT_BREAKING_AGAINST overrides it with any git revision). The revision's protos are
taken with `git archive` and get the same google/api and google/rpc protos from the
googleapis-common-protos wheel, so the Buf registry is never contacted.

ACCEPTED lists the wire changes made on purpose, each with why. An accepted change only ever matches
while the revision compared against predates it: once it is on main, buf no longer reports it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO

from gateway.buf_lint import THIRD_PARTY, stage_googleapis
from gateway.protos import REPO

AGAINST_DIR = REPO / "build" / "breaking-against"


@dataclass(frozen=True)
class Accepted:
    rules: tuple[str, ...]
    path: str
    message_part: str
    why: str


ACCEPTED = (
    Accepted(
        ("FIELD_SAME_TYPE", "FIELD_SAME_CARDINALITY"), "proto/pixport/v1/import_job.proto", '"started_at"',
        "ImportJob.started_at (JSON startedAt) follows the batch import API's documented wire format, "
        "`2020-01-01 13:45:12` (seed 002), so it became a string; the Timestamp moved to start_time (6).",
    ),
)


def against_revision() -> str:
    override = os.environ.get("PIXPORT_BREAKING_AGAINST")
    if override:
        return override
    for candidate in ("main^", "HEAD^"):
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
                               cwd=REPO, capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return found.stdout.strip()
    raise SystemExit("buf breaking: no revision to compare against (no main^, no HEAD^)")


def stage_against(revision: str) -> None:
    shutil.rmtree(AGAINST_DIR, ignore_errors=True)
    AGAINST_DIR.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "proto", "buf.yaml"],
                             cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(AGAINST_DIR, filter="data")
    shutil.copytree(THIRD_PARTY, AGAINST_DIR / "build" / "third_party")


def is_accepted(finding: dict[str, object]) -> Accepted | None:
    for accepted in ACCEPTED:
        if (finding.get("type") in accepted.rules and finding.get("path") == accepted.path
                and accepted.message_part in str(finding.get("message", ""))):
            return accepted
    return None


def main() -> int:
    stage_googleapis()
    revision = against_revision()
    stage_against(revision)
    buf = REPO / "node_modules" / ".bin" / "buf"
    with tempfile.TemporaryFile(mode="w+") as out:
        result = subprocess.run([str(buf), "breaking", "--against", str(AGAINST_DIR), "--error-format", "json"],
                                cwd=REPO, stdout=out, check=False)
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.strip()]
    findings = [json.loads(line) for line in lines]
    refused = []
    for finding in findings:
        accepted = is_accepted(finding)
        if accepted is not None:
            print(f"buf breaking: accepted {finding['type']} at {finding['path']}:{finding.get('start_line')}: "
                  f"{accepted.why}")
        else:
            refused.append(finding)
    for finding in refused:
        print(f"{finding['path']}:{finding.get('start_line')}: {finding['type']}: {finding['message']}",
              file=sys.stderr)
    if result.returncode != 0 and not findings:
        print("buf breaking failed without findings", file=sys.stderr)
        return result.returncode
    if refused:
        return 1
    print(f"buf breaking: no breaking change against {revision[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
