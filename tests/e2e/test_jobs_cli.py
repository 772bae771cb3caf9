"""`pixport jobs list|status|watch|cancel`, `pixport --version` and the CLI's hints, against the running stack."""

from __future__ import annotations

import json
import re

from support import images
from support.origin import Origin
from support.stack import Stack, free_port


def test_version(stack: Stack) -> None:
    result = stack.cli("--version")
    assert re.fullmatch(r"pixport \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


def test_jobs_list_status_watch(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    spec = [
        {"url": origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=31), delay=0.3), "id": "a", "fileName": "a"},
        {"url": origin.url(f"/{unique}/missing.jpg"), "id": "gone", "fileName": "gone"},
    ]
    job_id = stack.import_batch(org["token"], spec)
    connection = ("--token", org["token"], "--server", stack.grpc_target)

    watched = stack.cli("jobs", "watch", job_id, *connection, check=False)
    assert watched.returncode == 1, watched.stderr  # one image failed
    assert f"job {job_id}: success" in watched.stderr and "2/2" in watched.stderr
    assert "gone: HTTP 404 Not Found from origin" in watched.stderr

    status = json.loads(stack.cli("jobs", "status", job_id, *connection).stdout)
    assert (status["id"], status["state"], status["finished"]) == (job_id, "success", True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", status["startedAt"])
    assert status["overview"]["total"] == 2 and status["overview"]["failed"] == 1

    listed = [json.loads(line) for line in stack.cli("jobs", "list", "--json", *connection).stdout.splitlines()]
    assert listed[0]["id"] == job_id and listed[0]["overview"]["success"] == 1
    table = stack.cli("jobs", "list", *connection).stdout
    assert job_id in table and "success" in table


def test_jobs_cancel(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    slow = [{"url": origin.serve(f"/{unique}/s{n}.jpg", images.jpeg(seed=40 + n), delay=1.5), "id": f"s{n}",
             "fileName": "s"} for n in range(12)]
    job_id = stack.import_batch(org["token"], slow)
    result = stack.cli("jobs", "cancel", job_id, "--token", org["token"], "--server", stack.grpc_target)
    job = json.loads(result.stdout)
    assert (job["id"], job["state"], job["finished"]) == (job_id, "cancelled", True)
    assert job["overview"]["cancelled"] >= 1


def test_hints_for_common_mistakes(stack: Stack, org: dict[str, str]) -> None:
    secret = stack.cli("jobs", "list", "--token", org["secret"], "--server", stack.grpc_target, check=False)
    assert secret.returncode == 2 and "mint one with `pixport token" in secret.stderr
    nowhere = f"127.0.0.1:{free_port()}"
    down = stack.cli("jobs", "status", "x", "--token", org["token"], "--server", nowhere, check=False)
    assert down.returncode == 2
    assert f"cannot reach pixport at {nowhere}: is `make run` running? it listens on 127.0.0.1:" in down.stderr


def test_second_up_on_the_same_data_dir_says_who_runs(stack: Stack) -> None:
    assert stack.process is not None
    second = stack.cli("up", check=False)
    assert second.returncode == 1
    assert f"pixport is already running (pid {stack.process.pid})" in second.stdout + second.stderr
    assert stack.request("GET", "/ready").status == 200  # the first one is untouched
