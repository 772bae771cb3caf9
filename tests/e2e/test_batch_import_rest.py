"""Batch import through Envoy's REST edge, exactly as seed 002 shows it."""

from __future__ import annotations

import io

from PIL import Image
from support import images
from support.origin import Origin
from support.stack import Stack

SEED_IMAGE_KEYS = {"mediaId", "originalUrl", "url", "width", "height", "mimeType", "imageService"}


def test_import_success_then_skip_then_update(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/cat.jpg", images.jpeg(320, 240, seed=1))
    spec = [{"url": url, "id": f"{unique}-cat", "fileName": "cat", "metadata": {"caption": "bar"}}]

    first = stack.wait_job(stack.import_batch(org["token"], spec), org["token"])
    assert first["state"] == "success" and first["finished"] is True
    assert set(first) == {"finished", "state", "id", "startedAt", "images", "startTime", "finishedAt",
                          "finishTime", "overview"}
    [item] = first["images"]
    assert item["status"] == "success" and "reason" not in item
    assert item["externalId"] == f"{unique}-cat" and item["title"] == "cat"
    assert set(item["image"]) == SEED_IMAGE_KEYS
    image = item["image"]
    assert (image["width"], image["height"], image["mimeType"]) == (320, 240, "image/jpeg")
    assert image["imageService"] == "pixport"

    original = stack.request("GET", image["originalUrl"].split(str(stack.http_port), 1)[1])
    assert original.status == 200 and original.headers["content-type"] == "image/jpeg"
    assert original.body == images.jpeg(320, 240, seed=1)
    shown = stack.request("GET", image["url"].split(str(stack.http_port), 1)[1])
    assert shown.status == 200
    assert Image.open(io.BytesIO(shown.body)).size == (320, 240)

    again = stack.wait_job(stack.import_batch(org["token"], spec), org["token"])
    [skipped] = again["images"]
    assert skipped["status"] == "skipped" and skipped["reason"] == "already exists"
    assert skipped["image"]["mediaId"] == image["mediaId"]
    assert again["state"] == "success"

    origin.serve(f"/{unique}/cat.jpg", images.jpeg(640, 480, seed=2))
    updated = stack.wait_job(stack.import_batch(org["token"], spec), org["token"])
    [changed] = updated["images"]
    assert changed["status"] == "success"
    assert changed["image"]["mediaId"] == image["mediaId"]
    assert (changed["image"]["width"], changed["image"]["height"]) == (640, 480)
    assert changed["image"]["originalUrl"] != image["originalUrl"]  # new content, new versioned URL
    # The first job still reports what it imported then, as its event log does.
    assert stack.wait_job(first["id"], org["token"])["images"][0]["image"] == image


def test_failures_have_actionable_reasons(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    good = origin.serve(f"/{unique}/ok.png", images.png())
    not_image = origin.serve(f"/{unique}/page.jpg", b"<html>hello</html>", Content_Type="image/jpeg")
    job = stack.wait_job(stack.import_batch(org["token"], [
        {"url": good, "id": "ok", "fileName": "ok"},
        {"url": origin.url(f"/{unique}/missing.jpg"), "id": "missing", "fileName": "missing"},
        {"url": not_image, "id": "html", "fileName": "html"},
    ]), org["token"])
    by_id = {item["externalId"]: item for item in job["images"]}
    assert [item["externalId"] for item in job["images"]] == ["ok", "missing", "html"]
    assert by_id["ok"]["status"] == "success" and by_id["ok"]["image"]["mimeType"] == "image/png"
    assert by_id["missing"]["status"] == "failed" and "404" in by_id["missing"]["reason"]
    assert "image" not in by_id["missing"]
    assert by_id["html"]["status"] == "failed" and "not an image" in by_id["html"]["reason"]
    assert "Traceback" not in str(job)
    assert job["state"] == "success"  # one image made it


def test_job_with_no_success_is_failed(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    job = stack.wait_job(stack.import_batch(org["token"], [
        {"url": origin.url(f"/{unique}/nope.jpg"), "id": "a", "fileName": "a"},
    ]), org["token"])
    assert job["state"] == "failed" and job["finished"] is True


def test_started_job_reports_started(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    slow = origin.serve(f"/{unique}/slow.jpg", images.jpeg(), delay=2.0)
    job_id = stack.import_batch(org["token"], [{"url": slow, "id": "slow", "fileName": "slow"}])
    status = stack.request("GET", f"/api/v1/import/images/status?id={job_id}", token=org["token"]).json()
    assert status["finished"] is False and status["state"] == "started"
    assert status["id"] == job_id and len(status["startedAt"]) == len("2020-01-01 13:45:12")
    assert status["images"][0]["status"] == "pending"
    assert stack.wait_job(job_id, org["token"])["state"] == "success"


def test_gif_and_list_and_cancel(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    gif = origin.serve(f"/{unique}/anim.gif", images.gif())
    done = stack.wait_job(stack.import_batch(org["token"], [{"url": gif, "id": "g", "fileName": "g"}]), org["token"])
    assert done["images"][0]["image"]["mimeType"] == "image/gif"

    slow = [origin.serve(f"/{unique}/s{i}.jpg", images.jpeg(seed=i), delay=3.0) for i in range(12)]
    job_id = stack.import_batch(org["token"], [{"url": u, "id": f"s{i}", "fileName": "s"} for i, u in enumerate(slow)])
    cancelled = stack.request("POST", f"/api/v1/import/jobs/{job_id}:cancel", token=org["token"], body={})
    assert cancelled.status == 200, cancelled.body
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["finished"] is True
    assert {item["status"] for item in cancelled.json()["images"]} <= {"cancelled", "success"}

    listed = stack.request("GET", "/api/v1/import/jobs?pageSize=1", token=org["token"]).json()
    assert [job["id"] for job in listed["importJobs"]] == [job_id]
    # BASIC view: counts, not an empty list that reads as an empty job
    assert "images" not in listed["importJobs"][0]
    assert listed["importJobs"][0]["overview"] == cancelled.json()["overview"]
    assert listed["nextPageToken"]
    query = f"pageSize=5&pageToken={listed['nextPageToken']}&view=IMPORT_JOB_VIEW_FULL"
    page2 = stack.request("GET", f"/api/v1/import/jobs?{query}", token=org["token"]).json()
    assert [job["id"] for job in page2["importJobs"]] == [done["id"]]
    assert page2["importJobs"][0]["images"][0]["externalId"] == "g"
    assert page2["nextPageToken"] == ""

    by_path = stack.request("GET", f"/api/v1/import/jobs/{job_id}", token=org["token"])
    assert by_path.status == 200 and by_path.json()["state"] == "cancelled"


def test_request_id_makes_create_idempotent(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/i.jpg", images.jpeg(seed=7))
    body = {"systemName": "idem", "requestId": f"req-{unique}", "images": [{"url": url, "id": "x", "fileName": "x"}]}
    first = stack.request("POST", "/api/v1/import/images", token=org["token"], body=body).json()["id"]
    second = stack.request("POST", "/api/v1/import/images", token=org["token"], body=body).json()["id"]
    assert first == second
