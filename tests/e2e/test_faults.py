"""Faults survived with nothing lost: a worker SIGKILLed mid-batch, the embedded PostgreSQL
SIGKILLed mid-batch, the whole stack SIGTERMed mid-batch and started again. Each test asserts
exact counts: every image finished exactly once, one item_finished event per image, one webhook
delivery per job, and metrics that match what the test did."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.images import jpeg
from support.origin import Origin, Route, Sequence
from support.stack import FAST_WEBHOOK_RETRIES, Stack, free_port

pytestmark = pytest.mark.slow

BATCH = 200
FAULT_ENV = {
    **FAST_WEBHOOK_RETRIES,
    # Short leases: an item held by a killed worker is claimed again within seconds.
    "PIXPORT_LEASE_SECONDS": "6",
    "PIXPORT_PIXEL_PROCESSES": "1",
    "PIXPORT_MAX_PENDING_PER_ORG": "250",
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: these tests kill its processes."""
    running = Stack(tmp_path_factory.mktemp("faults"), {**FAULT_ENV, "PIXPORT_METRICS_PORT": str(free_port())})
    running.start()
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop()


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append((int(entry.name), command))
    return found


def _child_pid(stack: Stack, needle: str) -> int:
    assert stack.process is not None
    matches = [pid for pid, command in _children(stack.process.pid) if needle in command]
    assert len(matches) == 1, (needle, _children(stack.process.pid))
    return matches[0]


def _batch(origin: Origin, prefix: str, count: int = BATCH, delay: float = 0.03) -> list[dict[str, Any]]:
    images = []
    for index in range(count):
        url = origin.serve(f"/{prefix}/{index}.jpg", jpeg(64, 48, seed=index + 1), delay=delay)
        images.append({"url": url, "id": f"{prefix}-{index}", "fileName": f"image {index}"})
    return images


def _finished_count(stack: Stack, job_id: str, token: str) -> int:
    response = stack.request("GET", f"/api/v1/import/images/status?id={job_id}", token=token)
    if response.status != 200:
        return -1
    return sum(image["status"] != "pending" for image in response.json()["images"])


def _wait_until_some_finished(stack: Stack, job_id: str, token: str, at_least: int = 20) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = _finished_count(stack, job_id, token)
        assert finished < BATCH, "the batch finished before the fault could be injected"
        if finished >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the batch did not start")


def _events(stack: Stack, job_id: str, token: str) -> list[dict[str, Any]]:
    """Every event after job_started (sequence 1)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=60)
    try:
        connection.request("GET", f"/api/v1/import/images/status/stream?id={job_id}&afterSequence=1",
                           headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]
    finally:
        connection.close()


def _assert_exactly_once(stack: Stack, origin: Origin, job_id: str, token: str, prefix: str,
                         count: int = BATCH, hook: str | None = None) -> None:
    status = stack.wait_job(job_id, token, timeout=180)
    assert status["state"] == "success", status
    assert [image["status"] for image in status["images"]] == ["success"] * count, status
    assert sorted(image["externalId"] for image in status["images"]) == sorted(f"{prefix}-{i}" for i in range(count))
    assert len({image["image"]["mediaId"] for image in status["images"]}) == count
    events = _events(stack, job_id, token)
    finished = [event["itemFinished"]["externalId"] for event in events if "itemFinished" in event]
    assert sorted(finished) == sorted(f"{prefix}-{i}" for i in range(count))  # one event per image
    assert sum("jobFinished" in event for event in events) == 1
    # The log holds job_started, one item_finished per image and job_finished: nothing else.
    assert int(events[-1]["sequence"]) == count + 2
    if hook is not None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not origin.requests_to(hook):
            time.sleep(0.1)
        time.sleep(1.0)  # a duplicate delivery would arrive meanwhile
        deliveries = origin.requests_to(hook)
        assert len(deliveries) == 1, deliveries
        assert json.loads(deliveries[0].body)["id"] == job_id


def _metrics(stack: Stack) -> str:
    port = int(stack.env["PIXPORT_METRICS_PORT"])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        connection.close()


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(3))
    return total


def test_a_worker_killed_mid_batch_is_restarted_and_every_image_is_imported_once(
    faulty: Stack, origin: Origin, unique: str
) -> None:
    client = faulty.create_client(f"kill-worker-{unique}")
    token = faulty.token(client["client_id"])
    hook = f"/{unique}/hook"
    origin.serve(hook, b"ok")
    creates_before = _sample(_metrics(faulty), "pixport_rpc_requests_total",
                             method="/pixport.v1.ImportService/CreateImportJob", code="OK")
    job_id = faulty.import_batch(token, _batch(origin, unique), webhook=origin.url(hook))
    _wait_until_some_finished(faulty, job_id, token)
    victim = _child_pid(faulty, "pixport.cli work")
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _child_pid_or_none(faulty, "pixport.cli work") in (None, victim):
        time.sleep(0.1)
    assert _child_pid_or_none(faulty, "pixport.cli work") not in (None, victim), "worker not restarted"
    _assert_exactly_once(faulty, origin, job_id, token, unique, hook=hook)
    assert "worker-1 exited with code -9; restarting" in faulty.log.read_text()

    metrics = _metrics(faulty)
    assert _sample(metrics, "pixport_rpc_requests_total",
                   method="/pixport.v1.ImportService/CreateImportJob", code="OK") == creates_before + 1
    assert _sample(metrics, "pixport_webhook_attempts_total", outcome="delivered") >= 1
    assert _sample(metrics, "pixport_rpc_duration_seconds_count",
                   method="/pixport.v1.ImportService/CreateImportJob") >= creates_before + 1


def _child_pid_or_none(stack: Stack, needle: str) -> int | None:
    assert stack.process is not None
    matches = [pid for pid, command in _children(stack.process.pid) if needle in command]
    return matches[0] if len(matches) == 1 else None


def test_postgres_killed_mid_batch_gives_503_not_500_and_the_batch_completes(
    faulty: Stack, origin: Origin, unique: str
) -> None:
    client = faulty.create_client(f"kill-postgres-{unique}")
    token = faulty.token(client["client_id"])
    job_id = faulty.import_batch(token, _batch(origin, unique))
    _wait_until_some_finished(faulty, job_id, token)
    postgres = _child_pid(faulty, "postgres -D")
    os.kill(postgres, signal.SIGKILL)
    statuses: list[int] = []
    retry_after: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = faulty.request("GET", f"/api/v1/import/images/status?id={job_id}", token=token)
        statuses.append(response.status)
        if response.status == 503:
            retry_after.add(response.headers.get("retry-after", ""))
        if response.status == 200 and 503 in statuses:
            break
        time.sleep(0.02)
    assert 503 in statuses, statuses
    assert set(statuses) <= {200, 503}, statuses  # never a 500 while the database is away
    assert retry_after == {"2"}
    assert faulty.request("GET", "/ready").status == 200
    _assert_exactly_once(faulty, origin, job_id, token, unique)
    assert "postgres exited with code" in faulty.log.read_text()


def test_a_request_log_line_carries_its_x_request_id(faulty: Stack) -> None:
    client = faulty.create_client("request-ids")
    token = faulty.token(client["client_id"])
    response = faulty.request("GET", "/api/v1/import/jobs", token=token)
    assert response.status == 200
    request_id = response.headers["x-request-id"]
    log = faulty.data_dir / "logs" / "server.log"
    deadline = time.monotonic() + 10
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not lines:
        lines = [json.loads(line) for line in log.read_text().splitlines()
                 if line.startswith("{") and request_id in line]
        time.sleep(0.1)
    assert lines, f"no log line with request id {request_id}"
    assert lines[0]["request_id"] == request_id
    assert lines[0]["method"] == "/pixport.v1.ImportService/ListImportJobs" and lines[0]["code"] == "OK"
    assert token not in log.read_text()


def test_past_the_pending_bound_a_batch_is_refused_whole_with_429(
    faulty: Stack, origin: Origin, unique: str
) -> None:
    client = faulty.create_client(f"backlog-{unique}")
    token = faulty.token(client["client_id"])
    first = faulty.import_batch(token, _batch(origin, unique, 200, delay=2.0))
    try:
        refused = faulty.request("POST", "/api/v1/import/images", token=token, body={
            "systemName": "tests", "images": _batch(origin, f"{unique}-more", 100)})
        assert refused.status == 429, refused.body
        assert int(refused.headers["retry-after"]) > 0
        message = refused.json()[0]["error_details"]["message"]
        pending = int(re.search(r"has (\d+) pending", message).group(1))  # type: ignore[union-attr]
        assert 150 < pending <= 200 and "(at most 250)" in message, message
        # Refused whole: nothing of it was stored.
        jobs = faulty.request("GET", "/api/v1/import/jobs", token=token).json()
        assert [job["id"] for job in jobs["importJobs"]] == [first]
    finally:
        assert faulty.request("POST", f"/api/v1/import/jobs/{first}:cancel", token=token).status == 200


def test_50_concurrent_submitters_sending_twice_with_idempotency_keys_make_exactly_50_jobs(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    url = origin.serve(f"/{unique}/one.jpg", jpeg(32, 24, seed=3))

    def submit(index: int) -> list[tuple[int, str]]:
        body = {"systemName": "idem", "images": [{"url": url, "id": f"{unique}-{index}", "fileName": "x"}]}
        answers = []
        for _ in range(2):
            response = stack.request("POST", "/api/v1/import/images", token=org["token"], body=body,
                                     headers={"Idempotency-Key": f"{unique}-key-{index}"})
            answers.append((response.status, response.json()["id"] if response.status == 200 else ""))
        return answers

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(submit, range(50)))
    assert all(status == 200 for answers in results for status, _ in answers), results
    assert all(first == second for (_, first), (_, second) in results)
    job_ids = {job_id for (_, job_id), _ in results}
    assert len(job_ids) == 50
    listed = stack.request("GET", "/api/v1/import/jobs?pageSize=200", token=org["token"]).json()["importJobs"]
    assert {job["id"] for job in listed if job["id"] in job_ids} == job_ids
    assert len([job for job in listed if job["id"] not in job_ids]) == 0  # a fresh organisation: nothing else

    other_body = {"systemName": "idem", "images": [{"url": url, "id": "different", "fileName": "x"}]}
    reused = stack.request("POST", "/api/v1/import/images", token=org["token"], body=other_body,
                           headers={"Idempotency-Key": f"{unique}-key-0"})
    assert reused.status == 409, reused.body
    assert f"{unique}-key-0" in reused.json()["message"]


def test_an_origin_asking_to_retry_after_2_s_is_honoured_and_the_wait_is_visible(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    path = f"/{unique}/busy.jpg"
    busy = Route(b"busy", 503, {"Retry-After": "2"})
    origin.routes[path] = Sequence([busy, busy, Route(jpeg(40, 30, seed=11))])
    job_id = stack.import_batch(org["token"], [{"url": origin.url(path), "id": "b", "fileName": "b"}])
    arrivals: list[float] = []
    waiting: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        served = len(origin.requests_to(path))
        while len(arrivals) < served:
            arrivals.append(time.monotonic())
        [image] = stack.request("GET", f"/api/v1/import/images/status?id={job_id}", token=org["token"]).json()["images"]
        if image["status"] != "pending":
            break
        if "lastError" in image:
            waiting.append(image)
        time.sleep(0.05)
    assert image["status"] == "success", image
    assert len(origin.requests_to(path)) == 3
    # While it waited, the item said how many attempts were made and why the last one failed.
    assert waiting and {w["lastError"] for w in waiting} == {"HTTP 503 Service Unavailable from origin"}
    # 1 and 2 while waiting out each Retry-After (3 once the third attempt is under way).
    seen = [w["attempts"] for w in waiting]
    assert seen == sorted(seen) and {1, 2} <= set(seen) <= {1, 2, 3}, seen
    assert "attempts" not in image and "lastError" not in image  # gone once final
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 2 and all(gap >= 1.9 for gap in gaps), gaps


def test_the_edge_access_log_shows_the_callers_method_and_no_query_string(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    url = origin.serve(f"/{unique}/head.jpg", jpeg(40, 30, seed=21))
    job_id = stack.import_batch(org["token"], [{"url": url, "id": "h", "fileName": "h"}])
    [image] = stack.wait_job(job_id, org["token"])["images"]
    path = "/api/v1/images/" + image["image"]["mediaId"] + "/mini"
    response = stack.request("HEAD", f"{path}?v=secret-{unique}")
    assert response.status == 200
    request_id = response.headers["x-request-id"]
    log = stack.data_dir / "logs" / "envoy.log"
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline and not lines:
        lines = [line for line in log.read_text(errors="replace").splitlines() if request_id in line]
        time.sleep(0.1)
    assert len(lines) == 1 and re.fullmatch(rf"edge {request_id} HEAD {path} 200 \S+ \d+ms", lines[0]), lines
    assert f"secret-{unique}" not in log.read_text(errors="replace")


# Last: it stops the module's stack for good.
def test_sigterm_mid_batch_then_a_restart_on_the_same_data_dir_completes_it(
    faulty: Stack, origin: Origin, unique: str
) -> None:
    client = faulty.create_client(f"restart-{unique}")
    token = faulty.token(client["client_id"])
    count = 60
    job_id = faulty.import_batch(token, _batch(origin, unique, count, delay=0.1))
    _wait_until_some_finished(faulty, job_id, token, at_least=5)
    assert faulty.stop() == 0
    faulty.log.rename(faulty.data_dir / "up-before-restart.log")  # start() waits for a fresh "ready"
    again = Stack(faulty.data_dir, {**FAULT_ENV, "PIXPORT_METRICS_PORT": str(free_port())})
    again.start()
    try:
        _assert_exactly_once(again, origin, job_id, token, unique, count=count)
    finally:
        # A second SIGTERM exits at once, killing every child.
        assert again.process is not None
        started = [pid for pid, _ in _children(again.process.pid)]
        again.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        again.process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert again.process.wait(timeout=10) == 1
        assert time.monotonic() - began < 5
        time.sleep(0.5)
        assert [pid for pid in started if Path(f"/proc/{pid}").exists()
                and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"] == []
