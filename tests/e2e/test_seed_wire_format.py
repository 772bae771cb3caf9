"""Seed 002's status documents, field by field: every field of the seed's examples keeps its name, JSON type
and format in pixport's answers (extras are allowed, changes are not)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from support import images
from support.origin import Origin
from support.stack import Stack

# The seed's examples (../shared/seeds/002_*.txt), verbatim.
SEED_FINISHED = {
    "finished": True, "state": "success", "id": "25bzj8j",
    "images": [
        {"status": "success", "externalId": "external-unique-id-123", "title": "my image",
         "image": {"mediaId": "jjiwhsf23kdk", "originalUrl": "https://server.livingdocs.io/api/v1/images/x?id=M",
                   "url": "https://server.livingdocs.io/api/v1/images/x?id=M?format=auto", "width": 100,
                   "height": 100, "mimeType": "image/png", "imageService": "imgix"}},
        {"status": "skipped", "reason": "already exists", "externalId": "external-unique-id-234",
         "title": "my second image",
         "image": {"mediaId": "jjiwhsf23wer", "originalUrl": "https://server.livingdocs.io/api/v1/images/x?id=M",
                   "url": "https://server.livingdocs.io/api/v1/images/x?id=M?format=auto", "width": 100,
                   "height": 100, "mimeType": "image/png", "imageService": "imgix"}},
        {"status": "failed", "reason": "Could not upload image", "externalId": "external-unique-id-345",
         "title": "my third image"},
    ],
}
SEED_RUNNING = {"finished": False, "state": "started", "id": "243kdc", "startedAt": "2020-01-01 13:45:12"}
SEED_FAILED = {"finished": True, "state": "failed", "id": "098shjhv9"}

SEED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
FORMATS: dict[str, re.Pattern[str]] = {
    "startedAt": SEED_TIME, "finishedAt": SEED_TIME, "originalUrl": re.compile(r"^https?://"),
    "url": re.compile(r"^https?://"), "mimeType": re.compile(r"^image/[a-z+.-]+$"),
    "state": re.compile(r"^(started|success|failed|cancelled)$"),
    "status": re.compile(r"^(pending|success|skipped|failed|cancelled)$"),
}


def assert_like_seed(seed: Any, actual: Any, path: str = "$") -> None:
    """Every field the seed shows is present with the same JSON type (and format, where one is known)."""
    assert type(actual) is type(seed), (path, seed, actual)
    if isinstance(seed, dict):
        for key, value in seed.items():
            assert key in actual, (f"{path}.{key} missing", actual)
            assert_like_seed(value, actual[key], f"{path}.{key}")
            if key in FORMATS:
                assert FORMATS[key].match(actual[key]), (f"{path}.{key}", actual[key])
    elif isinstance(seed, list):
        for index, item in enumerate(actual):
            assert_like_seed(seed[min(index, len(seed) - 1)] if not isinstance(seed[0], dict) else
                             _matching(seed, item), item, f"{path}[{index}]")


def _matching(seed_items: list[Any], item: dict[str, Any]) -> Any:
    return next(s for s in seed_items if s["status"] == item["status"])


def test_running_job_status_is_the_seed_document(stack: Stack, origin: Origin, org: dict[str, str],
                                                  unique: str) -> None:
    slow = origin.serve(f"/{unique}/slow.png", images.png(), delay=2.0)
    before = datetime.now(UTC).replace(microsecond=0)
    job_id = stack.import_batch(org["token"], [{"url": slow, "id": "slow", "fileName": "slow"}])
    running = stack.request("GET", f"/api/v1/import/images/status?id={job_id}", token=org["token"]).json()
    assert_like_seed(SEED_RUNNING, running)
    started = datetime.strptime(running["startedAt"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert before <= started <= datetime.now(UTC)  # UTC, to the second
    assert "finishedAt" not in running
    assert running["overview"] == {"total": 1, "success": 0, "skipped": 0, "failed": 0, "cancelled": 0,
                                   "pending": 1}
    stack.wait_job(job_id, org["token"])


def test_finished_job_status_is_the_seed_document(stack: Stack, origin: Origin, org: dict[str, str],
                                                   unique: str) -> None:
    png = origin.serve(f"/{unique}/a.png", images.png())
    first = stack.import_batch(org["token"], [{"url": png, "id": f"{unique}-b", "fileName": "my second image"}])
    stack.wait_job(first, org["token"])
    job_id = stack.import_batch(org["token"], [
        {"url": origin.serve(f"/{unique}/b.png", images.png(color=(200, 10, 30, 255))), "id": f"{unique}-a",
         "fileName": "my image"},
        {"url": png, "id": f"{unique}-b", "fileName": "my second image"},
        {"url": origin.url(f"/{unique}/none.png"), "id": f"{unique}-c", "fileName": "my third image"},
    ])
    done = stack.wait_job(job_id, org["token"])
    assert [item["status"] for item in done["images"]] == ["success", "skipped", "failed"]
    assert_like_seed(SEED_FINISHED, done)
    assert done["images"][1]["reason"] == "already exists"
    assert SEED_TIME.match(done["finishedAt"]) and done["finishedAt"] >= done["startedAt"]
    assert done["overview"] == {"total": 3, "success": 1, "skipped": 1, "failed": 1, "cancelled": 0, "pending": 0}


def test_failed_job_status_is_the_seed_document(stack: Stack, origin: Origin, org: dict[str, str],
                                                 unique: str) -> None:
    job_id = stack.import_batch(org["token"], [{"url": origin.url(f"/{unique}/x.png"), "id": "x", "fileName": "x"}])
    done = stack.wait_job(job_id, org["token"])
    assert_like_seed(SEED_FAILED, done)
    assert done["state"] == "failed"


def test_job_list_shows_counts_not_empty_lists(stack: Stack, origin: Origin, org: dict[str, str],
                                               unique: str) -> None:
    job_id = stack.import_batch(org["token"], [{"url": origin.serve(f"/{unique}/l.png", images.png()), "id": "l",
                                                "fileName": "l"}])
    stack.wait_job(job_id, org["token"])
    listed = stack.request("GET", "/api/v1/import/jobs", token=org["token"]).json()["importJobs"]
    [job] = [j for j in listed if j["id"] == job_id]
    assert "images" not in job and job["overview"]["success"] == 1
    assert SEED_TIME.match(job["startedAt"])
    full = stack.request("GET", "/api/v1/import/jobs?view=IMPORT_JOB_VIEW_FULL", token=org["token"]).json()
    assert next(j for j in full["importJobs"] if j["id"] == job_id)["images"][0]["status"] == "success"
