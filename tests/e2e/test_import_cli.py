"""`pixport import FILE --watch`: live progress from the stream, failures listed, exit code."""

from __future__ import annotations

import json
from pathlib import Path

from support import images
from support.origin import Origin
from support.stack import Stack


def test_cli_import_watch_reports_progress_and_failures(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str, tmp_path: Path
) -> None:
    batch = {"systemName": "cli", "images": [
        {"url": origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=21), delay=0.3), "id": "a", "fileName": "a"},
        {"url": origin.serve(f"/{unique}/b.png", images.png()), "id": "b", "fileName": "b"},
        {"url": origin.url(f"/{unique}/nope.jpg"), "id": "broken-one", "fileName": "nope"},
    ]}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    result = stack.cli("import", str(path), "--watch", "--token", org["token"],
                       "--server", stack.grpc_target, check=False)
    assert result.returncode == 1, result.stderr
    job_id = json.loads(result.stdout.splitlines()[0])["id"]
    assert f"job {job_id}: success" in result.stderr
    assert "success 2 skipped 0 failed 1" in result.stderr
    assert "broken-one: HTTP 404 Not Found from origin" in result.stderr
    assert "3/3" in result.stderr

    ok = {"systemName": "cli", "images": batch["images"][:2]}
    path.write_text(json.dumps(ok))
    again = stack.cli("import", str(path), "--watch", "--token", org["token"], "--server", stack.grpc_target,
                      check=False)
    assert again.returncode == 0, again.stderr
    assert "skipped 2" in again.stderr


def test_cli_import_without_token_explains(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text("{}")
    env_token = stack.env.pop("PIXPORT_TOKEN", None)
    try:
        result = stack.cli("import", str(path), check=False)
    finally:
        if env_token is not None:
            stack.env["PIXPORT_TOKEN"] = env_token
    assert result.returncode == 2 and "token" in result.stderr
