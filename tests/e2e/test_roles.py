"""`pixport check`, the health check of every role's container, against the running stack."""

from __future__ import annotations

import subprocess

from support.stack import PIXPORT, REPO, Stack, free_port


def test_check_passes_on_a_running_stack(stack: Stack) -> None:
    assert stack.cli("check").returncode == 0  # database and blob store
    assert stack.cli("check", "--grpc", stack.grpc_target).returncode == 0
    assert stack.cli("check", "--http", f"http://127.0.0.1:{stack.http_port}/ready").returncode == 0


def test_check_names_what_it_cannot_reach(stack: Stack) -> None:
    closed = free_port()
    result = stack.cli("check", "--grpc", f"127.0.0.1:{closed}", "--http", f"http://127.0.0.1:{closed}/ready",
                       check=False)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"pixport: gRPC 127.0.0.1:{closed}: UNAVAILABLE")
    assert lines[1].startswith(f"pixport: http://127.0.0.1:{closed}/ready: ")


def test_check_names_a_bad_blob_url(stack: Stack) -> None:
    result = subprocess.run([PIXPORT, "check"], env={**stack.env, "PIXPORT_BLOB_URL": "ftp://nowhere"},
                            capture_output=True, text=True, cwd=REPO, check=False, timeout=60)
    assert result.returncode == 1
    expected = "blob store: PIXPORT_BLOB_URL must be file://PATH or s3://BUCKET/PREFIX, got 'ftp://nowhere'"
    assert expected in result.stderr
