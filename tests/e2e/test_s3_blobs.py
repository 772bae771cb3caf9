"""The whole stack with its blobs in S3: a real S3 HTTP endpoint (moto in server mode, its own
process on a loopback port), imports through the real edge, bytes served back through it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import images
from support.origin import Origin
from support.s3 import MotoServer
from support.stack import FAST_WEBHOOK_RETRIES, Stack

BUCKET = "pixport-e2e"
PREFIX = "prod/blobs"
RENDITIONS = ("original", "mini", "large", "full", "fit2000", "fill100")
# The workers' blob collector, made quick: long enough a grace to see a replaced image's old objects
# still there, short enough to see them collected.
GC_GRACE_SECONDS = 10.0
GC_INTERVAL_SECONDS = 0.5
BLOB_GC = {"PIXPORT_BLOB_GC_GRACE_SECONDS": str(GC_GRACE_SECONDS),
           "PIXPORT_BLOB_GC_INTERVAL_SECONDS": str(GC_INTERVAL_SECONDS)}


@pytest.fixture(scope="module")
def s3_stack(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    moto.create_bucket(BUCKET)
    running = Stack(tmp_path_factory.mktemp("s3-stack"),
                    {**FAST_WEBHOOK_RETRIES, **BLOB_GC, **moto.env(BUCKET, PREFIX)})
    running.start()
    yield running
    assert running.stop() == 0, running.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def s3_org(s3_stack: Stack) -> dict[str, str]:
    client = s3_stack.create_client("s3-org")
    client["token"] = s3_stack.token(client["client_id"])
    return client


def path_of(stack: Stack, url: str) -> str:
    return url.split(str(stack.http_port), 1)[1]


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


def served(stack: Stack, moto: MotoServer, image: dict[str, str]) -> dict[str, str]:
    """Fetch every rendition through the edge; check bytes, ETag, caching, 304 and HEAD against the
    bucket's object; the object names behind them."""
    objects = moto.objects(BUCKET, PREFIX)
    names: dict[str, str] = {}
    for rendition in RENDITIONS:
        path = path_of(stack, image["originalUrl"]).replace("/original?", f"/{rendition}?")
        got = stack.request("GET", path)
        assert got.status == 200, (rendition, got.body[:300])
        key = hashlib.sha256(got.body).hexdigest()
        name = f"{PREFIX}/{key}"
        assert name in objects, rendition
        assert moto.get(BUCKET, name) == got.body
        assert got.headers["etag"] == f'"{key[:32]}"'
        assert "immutable" in got.headers["cache-control"]
        again = stack.request("GET", path, headers={"If-None-Match": got.headers["etag"]})
        assert again.status == 304 and again.body == b""
        head = stack.request("HEAD", path)
        assert head.status == 200 and head.body == b"" and head.headers["etag"] == got.headers["etag"]
        names[rendition] = name
    return names


def test_an_import_stores_objects_in_the_bucket_and_serves_them(
    s3_stack: Stack, s3_org: dict[str, str], moto: MotoServer, origin: Origin, unique: str
) -> None:
    photo = images.jpeg(2400, 1600, seed=7)
    spec = [
        {"url": origin.serve(f"/{unique}/a.jpg", photo), "id": f"{unique}-a", "fileName": "a"},
        {"url": origin.serve(f"/{unique}/b.png", images.png()), "id": f"{unique}-b", "fileName": "b"},
    ]
    status = s3_stack.wait_job(s3_stack.import_batch(s3_org["token"], spec), s3_org["token"])
    assert [item["status"] for item in status["images"]] == ["success", "success"], status
    first, second = (served(s3_stack, moto, item["image"]) for item in status["images"])
    assert moto.get(BUCKET, first["original"]) == photo
    assert set(moto.objects(BUCKET, PREFIX)) >= set(first.values()) | set(second.values())
    assert blob_files(s3_stack.data_dir) == []  # nothing under the data dir's blobs
    ready = s3_stack.request("GET", "/ready")
    assert ready.status == 200, ready.body


def test_a_replaced_image_s_old_objects_can_be_collected(
    s3_stack: Stack, s3_org: dict[str, str], moto: MotoServer, origin: Origin, unique: str
) -> None:
    # Nothing in this test deletes objects: only the workers' background collector can.
    baseline = set(moto.objects(BUCKET, PREFIX))  # the earlier tests' images, all still referenced
    spec = [{"url": origin.serve(f"/{unique}/c.jpg", images.jpeg(400, 300, seed=11)), "id": f"{unique}-c",
             "fileName": "c"}]
    written = time.monotonic()  # the old objects' ledger rows are younger than this
    before = s3_stack.wait_job(s3_stack.import_batch(s3_org["token"], spec), s3_org["token"])["images"][0]["image"]
    old = set(served(s3_stack, moto, before).values())
    assert set(moto.objects(BUCKET, PREFIX)) == baseline | old
    origin.serve(f"/{unique}/c.jpg", images.jpeg(500, 300, seed=12))
    after = s3_stack.wait_job(s3_stack.import_batch(s3_org["token"], spec), s3_org["token"])["images"][0]["image"]
    replaced = set(moto.objects(BUCKET, PREFIX))
    assert time.monotonic() - written < GC_GRACE_SECONDS, "the replacement outlasted the grace period"
    assert after["mediaId"] == before["mediaId"]
    new = set(served(s3_stack, moto, after).values())
    assert old - new  # the new bytes gave new objects
    assert replaced == baseline | old | new  # within the grace period, unreferenced objects stay

    deadline = written + GC_GRACE_SECONDS + 30
    objects = replaced
    while objects != baseline | new and time.monotonic() < deadline:
        time.sleep(GC_INTERVAL_SECONDS)
        objects = set(moto.objects(BUCKET, PREFIX))
    assert objects == baseline | new, (sorted(objects - baseline - new), sorted(baseline | new - objects))
    assert time.monotonic() > written + GC_GRACE_SECONDS  # not collected before their grace was up
    assert set(served(s3_stack, moto, after).values()) == new


@pytest.mark.slow
def test_a_missing_bucket_shows_on_ready_and_fails_imports_with_a_reason(
    s3_stack: Stack, s3_org: dict[str, str], moto: MotoServer, origin: Origin, unique: str
) -> None:
    # Last in this module: it takes the bucket away.
    client = moto.client()
    for name in moto.objects(BUCKET):
        client.delete_object(Bucket=BUCKET, Key=name)
    client.delete_bucket(Bucket=BUCKET)
    ready = s3_stack.request("GET", "/ready")
    assert ready.status == 503
    assert f"blob store unavailable: bucket s3://{BUCKET} does not exist" in ready.json()["message"]
    spec = [{"url": origin.serve(f"/{unique}/d.jpg", images.jpeg(64, 64, seed=3)), "id": f"{unique}-d",
             "fileName": "d"}]
    status = s3_stack.wait_job(s3_stack.import_batch(s3_org["token"], spec), s3_org["token"], timeout=60)
    [item] = status["images"]
    assert item["status"] == "failed"
    assert item["reason"] == (f"cannot store the image: bucket s3://{BUCKET} does not exist at {moto.url} "
                              "(gave up after 3 attempts)")
    moto.create_bucket(BUCKET)
    assert s3_stack.request("GET", "/ready").status == 200
    assert "exited with code" not in s3_stack.log.read_text()  # the workers' collector rode out the outage
