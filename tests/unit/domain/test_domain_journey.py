"""One image's journey with fakes of its ports: every outcome, and which ports each outcome touches."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pixport.domain.journey as journey_module
import pytest
from pixport.domain.journey import (
    INTERNAL_ERROR,
    MAX_ATTEMPTS,
    POOL_UNAVAILABLE,
    RETRY_DELAYS,
    Ending,
    GiveUp,
    Journey,
    Retry,
    Unfetchable,
    after_failure,
)
from pixport.domain.queue import ClaimedItem, Outcome, StoredImage
from pixport.domain.records import ImageRef, ItemStatus
from pixport.imaging.pool import PixelPoolClosed, PixelPoolError
from pixport.imaging.types import Analysis, ImageRejected, Rendition

ORIGINAL = b"\xff\xd8 the original bytes"


def analysis() -> Analysis:
    return Analysis(
        format="jpeg", mime_type="image/jpeg", width=40, height=30, byte_size=len(ORIGINAL), sha256="ab" * 32,
        original=ORIGINAL, exif={}, taken_at=None, gps=None, frame_count=1, has_alpha=False, is_grayscale=False,
        phash="8000000000000001", colors=(), placeholder=None,
        renditions=(Rendition("mini", "image/jpeg", 10, 10, b"mini"), Rendition("full", "image/jpeg", 40, 30, b"f")),
    )


def item(attempts: int = 1, connector: str = "url", connector_ref: str | None = None) -> ClaimedItem:
    return ClaimedItem(
        id=7, job_id="job1", organization_id="org1", position=0, external_id="ext1", url="http://origin/a.jpg",
        title="a", metadata={}, media_type="image", attempts=attempts, system_name="tests", connector=connector,
        connector_ref=connector_ref, lease_owner="me:1",
    )


IMAGE = ImageRef("M1", 40, 30, "image/jpeg", "ab" * 32)


@dataclass
class FakeQueue:
    lease_held: bool = True
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def requeue(
        self, item: ClaimedItem, owner: str, delay_seconds: float, reason: str | None, *, refund: bool = False
    ) -> bool:
        self.calls.append(("requeue", owner, delay_seconds, reason, refund))
        return self.lease_held

    async def finish_failed(self, item: ClaimedItem, owner: str, reason: str) -> Outcome | None:
        self.calls.append(("failed", owner, reason))
        return Outcome(ItemStatus.FAILED, reason, None) if self.lease_held else None

    async def finish_imported(self, item: ClaimedItem, owner: str, stored: StoredImage) -> Outcome | None:
        self.calls.append(("imported", owner, stored))
        skipped = stored.analysis.get("seen_before")
        status = ItemStatus.SKIPPED if skipped else ItemStatus.SUCCESS
        return Outcome(status, "already exists" if skipped else None, IMAGE) if self.lease_held else None


@dataclass
class FakePixels:
    failure: Exception | None = None
    seen: list[bytes] = field(default_factory=list)

    async def analyse(self, data: bytes) -> Analysis:
        self.seen.append(data)
        if self.failure is not None:
            raise self.failure
        return analysis()


@dataclass
class FakeBlobs:
    written: list[list[bytes]] = field(default_factory=list)

    async def put_all(self, blobs: Sequence[bytes]) -> list[str]:
        self.written.append(list(blobs))
        return [f"key-{index}" for index, _ in enumerate(blobs)]


@dataclass
class FakeDuplicates:
    mark_seen: bool = False

    async def annotate(self, organization_id: str, system_name: str, external_id: str,
                       stored: StoredImage) -> StoredImage:
        if not self.mark_seen:
            return stored
        return StoredImage(**{**stored.__dict__, "analysis": {**stored.analysis, "seen_before": True}})


@dataclass
class FakeUrls:
    failure: Exception | None = None
    asked: list[str] = field(default_factory=list)

    async def fetch(self, url: str, headers: Mapping[str, str] | None) -> bytes:
        self.asked.append(url)
        if self.failure is not None:
            raise self.failure
        return ORIGINAL


@dataclass
class FakeConnector:
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def fetch(self, organization_id: str, ref: str) -> bytes:
        self.asked.append((organization_id, ref))
        return ORIGINAL


@dataclass
class World:
    queue: FakeQueue = field(default_factory=FakeQueue)
    pixels: FakePixels = field(default_factory=FakePixels)
    blobs: FakeBlobs = field(default_factory=FakeBlobs)
    duplicates: FakeDuplicates = field(default_factory=FakeDuplicates)
    urls: FakeUrls = field(default_factory=FakeUrls)
    connector: FakeConnector = field(default_factory=FakeConnector)

    @property
    def journey(self) -> Journey:
        return Journey(queue=self.queue, pixels=self.pixels, blobs=self.blobs, duplicates=self.duplicates,
                       urls=self.urls, connectors={"salesforce": self.connector})


async def test_success_fetches_analyses_stores_every_blob_and_finishes_imported() -> None:
    world = World()
    result = await world.journey.run(item())
    assert (result.ending, result.status) == (Ending.FINISHED, ItemStatus.SUCCESS)
    assert world.urls.asked == ["http://origin/a.jpg"]
    assert world.pixels.seen == [ORIGINAL]
    assert world.blobs.written == [[ORIGINAL, b"mini", b"f"]]
    [(call, owner, stored)] = world.queue.calls
    assert (call, owner) == ("imported", "me:1")
    assert stored.analysis["original"]["key"] == "key-0"
    assert stored.analysis["renditions"]["mini"]["key"] == "key-1"
    assert stored.analysis["renditions"]["full"]["key"] == "key-2"
    assert stored.phash == -(2**63) + 1
    assert result.timings.fetch_ms is not None and result.timings.pixels_ms is not None
    assert result.timings.store_ms is not None


async def test_same_bytes_again_is_skipped() -> None:
    world = World(duplicates=FakeDuplicates(mark_seen=True))
    result = await world.journey.run(item())
    assert (result.ending, result.status, result.reason) == (Ending.FINISHED, ItemStatus.SKIPPED, "already exists")


async def test_a_connector_from_the_registry_supplies_the_bytes() -> None:
    world = World()
    result = await world.journey.run(item(connector="salesforce", connector_ref="00P000000000001"))
    assert result.status is ItemStatus.SUCCESS
    assert world.connector.asked == [("org1", "00P000000000001")]
    assert world.urls.asked == []


async def test_an_unknown_connector_fails_without_pixels_or_blobs() -> None:
    world = World()
    result = await world.journey.run(item(connector="dropbox", connector_ref="x"))
    assert (result.ending, result.status) == (Ending.FINISHED, ItemStatus.FAILED)
    assert world.queue.calls == [("failed", "me:1", "no connector 'dropbox' for this image")]
    assert world.pixels.seen == [] and world.blobs.written == []


async def test_a_permanent_fetch_failure_fails_at_once_without_pixels_or_blobs() -> None:
    world = World(urls=FakeUrls(Unfetchable("HTTP 404 Not Found from origin")))
    result = await world.journey.run(item())
    assert (result.ending, result.status, result.reason) == (
        Ending.FINISHED, ItemStatus.FAILED, "HTTP 404 Not Found from origin")
    assert world.queue.calls == [("failed", "me:1", "HTTP 404 Not Found from origin")]
    assert world.pixels.seen == [] and world.blobs.written == []


async def test_a_rejected_image_fails_without_blobs() -> None:
    world = World(pixels=FakePixels(ImageRejected("not an image: text/html")))
    result = await world.journey.run(item())
    assert result.status is ItemStatus.FAILED
    assert world.queue.calls == [("failed", "me:1", "not an image: text/html")]
    assert world.blobs.written == []


@pytest.mark.parametrize(("attempts", "delay"), [(1, RETRY_DELAYS[0]), (2, RETRY_DELAYS[1])])
async def test_a_transient_failure_is_retried_with_the_attempt_counted(attempts: int, delay: float) -> None:
    world = World(urls=FakeUrls(Unfetchable("timed out reading from origin", retryable=True)))
    result = await world.journey.run(item(attempts))
    assert result.ending is Ending.RETRYING
    assert world.queue.calls == [("requeue", "me:1", delay, "timed out reading from origin", False)]


async def test_a_transient_failure_on_the_last_attempt_gives_up_saying_so() -> None:
    world = World(urls=FakeUrls(Unfetchable("timed out reading from origin", retryable=True)))
    result = await world.journey.run(item(MAX_ATTEMPTS))
    assert result.status is ItemStatus.FAILED
    assert world.queue.calls == [
        ("failed", "me:1", f"timed out reading from origin (gave up after {MAX_ATTEMPTS} attempts)")]


async def test_an_unexpected_error_is_retried_as_an_internal_error() -> None:
    world = World(urls=FakeUrls(RuntimeError("bug")))
    result = await world.journey.run(item())
    assert result.ending is Ending.RETRYING
    assert world.queue.calls == [("requeue", "me:1", RETRY_DELAYS[0], INTERNAL_ERROR, False)]


@pytest.mark.parametrize("lost_at", ["imported", "failed", "retry"])
async def test_a_lost_lease_records_nothing_more(lost_at: str) -> None:
    failures: dict[str, Exception | None] = {
        "imported": None, "failed": Unfetchable("HTTP 404"), "retry": Unfetchable("HTTP 503", retryable=True)}
    world = World(queue=FakeQueue(lease_held=False), urls=FakeUrls(failures[lost_at]))
    result = await world.journey.run(item())
    assert (result.ending, result.status) == (Ending.LEASE_LOST, None)
    assert len(world.queue.calls) == 1


async def test_shutdown_hands_the_item_back_with_the_attempt_refunded() -> None:
    world = World()
    result = await world.journey.hand_back(item(2))
    assert result.ending is Ending.HANDED_BACK
    assert world.queue.calls == [("requeue", "me:1", 0, None, True)]


async def test_a_closing_pixel_pool_hands_the_item_back_refunded() -> None:
    world = World(pixels=FakePixels(PixelPoolClosed("the pixel pool is closed")))
    result = await world.journey.run(item())
    assert result.ending is Ending.HANDED_BACK
    assert world.queue.calls == [("requeue", "me:1", 0, None, True)]
    assert world.blobs.written == []


async def test_a_failing_pixel_pool_counts_attempts_and_is_given_up() -> None:
    """Every attempt is counted, so a broken pool cannot hand an item back forever."""
    world = World(pixels=FakePixels(PixelPoolError("pixel pool processes keep dying")))
    endings = [await world.journey.run(item(attempt)) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert [result.ending for result in endings] == [Ending.RETRYING, Ending.RETRYING, Ending.FINISHED]
    assert world.queue.calls == [
        ("requeue", "me:1", RETRY_DELAYS[0], POOL_UNAVAILABLE, False),
        ("requeue", "me:1", RETRY_DELAYS[1], POOL_UNAVAILABLE, False),
        ("failed", "me:1", f"{POOL_UNAVAILABLE} (gave up after {MAX_ATTEMPTS} attempts)"),
    ]
    assert world.blobs.written == []


async def test_an_item_interrupted_too_often_is_given_up_without_fetching() -> None:
    world = World()
    result = await world.journey.run(item(MAX_ATTEMPTS + 1))
    assert result.status is ItemStatus.FAILED
    assert world.queue.calls == [("failed", "me:1", f"processing was interrupted {MAX_ATTEMPTS} times; giving up")]
    assert world.urls.asked == [] and world.pixels.seen == []


@pytest.mark.parametrize(
    ("attempts", "retryable", "expected"),
    [
        (1, True, Retry(RETRY_DELAYS[0], "r")),
        (2, True, Retry(RETRY_DELAYS[1], "r")),
        (3, True, GiveUp("r (gave up after 3 attempts)")),
        (1, False, GiveUp("r")),
        (2, False, GiveUp("r")),
    ],
)
def test_retry_policy(attempts: int, retryable: bool, expected: Retry | GiveUp) -> None:
    assert after_failure(attempts, "r", retryable=retryable) == expected


def test_the_journey_imports_nothing_from_store_api_runtime_or_aiohttp() -> None:
    tree = ast.parse(Path(journey_module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    forbidden = ("pixport.store", "pixport.api", "pixport.runtime", "aiohttp", "asyncpg", "grpc")
    assert not [name for name in imported if name.startswith(forbidden)]
