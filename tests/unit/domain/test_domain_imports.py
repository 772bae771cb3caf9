"""Import use cases without SQL: page tokens, ImportJobs over an in-memory store, and watch()."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from pixport.domain.auth import READ_SCOPE, WRITE_SCOPE, Principal, TokenStyle
from pixport.domain.batch import BatchRequest, ImageSpec
from pixport.domain.errors import InvalidArgument, NotFound, PermissionDenied, QuotaExceeded
from pixport.domain.imports import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ImportJobs,
    decode_page_token,
    encode_page_token,
    watch,
)
from pixport.domain.records import JobEvent, JobState, JobView

ORG = "org-a"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- page tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2030, 1, 1, tzinfo=UTC),
    ],
)
def test_page_token_roundtrip(created_at: datetime) -> None:
    token = encode_page_token(created_at, "k49k2grn11sravdj")
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    decoded_at, job_id = decode_page_token(token)
    assert job_id == "k49k2grn11sravdj"
    assert decoded_at == created_at
    assert decoded_at.utcoffset() == created_at.utcoffset()


@pytest.mark.parametrize(
    "token",
    [
        "!!!not base64!!!",
        "abc",
        "",
        b64(b"{}"),
        b64(b"null"),
        b64(b"42"),
        b64(b'"ab"'),
        b64(b"[1, 2]"),
        b64(b'["not a date", "id"]'),
        b64(b'["2024-01-01T00:00:00+00:00"]'),
        b64(b'["2024-01-01T00:00:00+00:00", "a", "b"]'),
        b64(b"\xff\xfe\xfd"),
        b64(b"[" * 10),
    ],
)
def test_garbage_page_tokens_are_invalid_arguments_naming_page_token(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token)
    assert [v.field for v in caught.value.violations] == ["pageToken"]


def test_a_deeply_nested_page_token_is_an_invalid_argument() -> None:
    token = b64(b"[" * 5000)  # about 6.7 kB: fits in a URL
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token)
    assert [v.field for v in caught.value.violations] == ["pageToken"]


# --- ImportJobs over an in-memory store ------------------------------------------------------------


def job_view(job_id: str, *, org: str = ORG, minutes: int = 0, state: JobState = JobState.STARTED,
             last_sequence: int = 1) -> JobView:
    return JobView(
        id=job_id, organization_id=org, system_name="archive", state=state,
        started_at=T0 + timedelta(minutes=minutes), finished_at=None, item_count=1,
        last_sequence=last_sequence, items=(),
    )


class MemoryJobs:
    """The JobStore surface ImportJobs uses."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobView] = {}
        self.events: dict[str, list[JobEvent]] = {}
        self.created: list[tuple[str, str, BatchRequest]] = []
        self.calls: list[str] = []
        self.images_per_day: int | None = None
        self.window: list[tuple[datetime, int]] = []

    async def create_job(
        self, job_id: str, organization_id: str, batch: BatchRequest,
        admit: Callable[[int | None, list[tuple[datetime, int]], datetime, tuple[int, int]], None],
    ) -> str:
        admit(self.images_per_day, self.window, T0, (0, 0))  # raises to refuse, as the real store does
        self.created.append((job_id, organization_id, batch))
        return job_id

    async def get_job(self, organization_id: str, job_id: str, *, with_items: bool = True) -> JobView | None:
        self.calls.append(f"get_job {job_id}")
        job = self.jobs.get(job_id)
        if job is None or job.organization_id != organization_id:
            return None
        return job if with_items else replace(job, items=None)

    async def list_jobs(
        self, organization_id: str, *, limit: int, before: tuple[datetime, str] | None, with_items: bool
    ) -> list[JobView]:
        self.calls.append(f"list_jobs limit={limit}")
        mine = sorted(
            (j for j in self.jobs.values() if j.organization_id == organization_id),
            key=lambda j: (j.started_at, j.id), reverse=True,
        )
        if before is not None:
            mine = [j for j in mine if (j.started_at, j.id) < before]
        return mine[:limit]

    async def cancel_job(self, organization_id: str, job_id: str) -> bool:
        self.calls.append(f"cancel_job {job_id}")
        job = self.jobs.get(job_id)
        if job is None or job.organization_id != organization_id:
            return False
        self.jobs[job_id] = replace(job, state=JobState.CANCELLED)
        return True

    async def events_after(self, job_id: str, after_sequence: int) -> list[JobEvent]:
        return [e for e in self.events.get(job_id, []) if e.sequence > after_sequence]


def principal(*scopes: str, org: str = ORG) -> Principal:
    return Principal(organization_id=org, client_id="c", scopes=frozenset(scopes or (WRITE_SCOPE,)),
                     style=TokenStyle.BEARER, token="t")


def service(store: MemoryJobs) -> ImportJobs:
    return ImportJobs(cast(Any, store))


def valid_batch() -> BatchRequest:
    return BatchRequest(system_name="archive", images=(ImageSpec("HTTPS://Example.com/a.jpg", "1", "a"),))


async def test_create_validates_and_stores_the_normalised_batch() -> None:
    store = MemoryJobs()
    job_id = await service(store).create(principal(WRITE_SCOPE), valid_batch())
    assert len(job_id) == 16
    [(stored_id, org, batch)] = store.created
    assert (stored_id, org) == (job_id, ORG)
    assert batch.images[0].url == "https://example.com/a.jpg"


async def test_create_needs_the_write_scope_and_stores_nothing_without_it() -> None:
    store = MemoryJobs()
    with pytest.raises(PermissionDenied):
        await service(store).create(principal(READ_SCOPE), valid_batch())
    assert store.created == []


async def test_create_admits_within_the_quota_and_refuses_beyond_it() -> None:
    store = MemoryJobs()
    store.images_per_day = 3
    store.window = [(T0 - timedelta(hours=1), 2)]
    await service(store).create(principal(), valid_batch())  # 2 + 1 <= 3
    store.window.append((T0, 1))
    with pytest.raises(QuotaExceeded) as caught:
        await service(store).create(principal(), valid_batch())
    assert (caught.value.limit, caught.value.used, caught.value.requested) == (3, 3, 1)
    assert caught.value.retry_after_seconds == 23 * 3600  # when the oldest batch leaves the 24 hours
    assert len(store.created) == 1


async def test_create_stores_nothing_for_an_invalid_batch() -> None:
    store = MemoryJobs()
    with pytest.raises(InvalidArgument):
        await service(store).create(principal(), BatchRequest(system_name="", images=()))
    assert store.created == []


async def test_get_returns_the_callers_job() -> None:
    store = MemoryJobs()
    store.jobs["job1"] = job_view("job1")
    assert (await service(store).get(principal(READ_SCOPE), "job1")).id == "job1"


@pytest.mark.parametrize("job_id", ["missing", "../etc/passwd", "a\x00", "x" * 65])
async def test_get_of_unknown_or_hostile_ids_is_not_found(job_id: str) -> None:
    store = MemoryJobs()
    with pytest.raises(NotFound):
        await service(store).get(principal(), job_id)
    if job_id != "missing":
        assert store.calls == []  # never reaches the store


async def test_get_of_another_organisations_job_is_not_found() -> None:
    store = MemoryJobs()
    store.jobs["job1"] = job_view("job1", org="org-b")
    with pytest.raises(NotFound):
        await service(store).get(principal(), "job1")


async def test_get_without_id_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await service(MemoryJobs()).get(principal(), "")
    assert [v.field for v in caught.value.violations] == ["id"]


async def test_listing_pages_through_every_job_newest_first() -> None:
    store = MemoryJobs()
    for n in range(5):
        store.jobs[f"job{n}"] = job_view(f"job{n}", minutes=n)
    store.jobs["same-time"] = job_view("same-time", minutes=2)
    jobs = service(store)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page, token = await jobs.list_jobs(principal(READ_SCOPE), page_size=2, page_token=token, with_items=False)
        seen += [j.id for j in page]
        pages += 1
        if not token:
            break
    assert seen == ["job4", "job3", "same-time", "job2", "job1", "job0"]
    assert pages == 3
    assert "list_jobs limit=3" in store.calls  # one more than the page, to know whether there is a next


async def test_listing_page_sizes() -> None:
    store = MemoryJobs()
    jobs = service(store)
    await jobs.list_jobs(principal(), page_size=0, page_token="", with_items=False)
    await jobs.list_jobs(principal(), page_size=10_000, page_token="", with_items=False)
    assert store.calls == [f"list_jobs limit={DEFAULT_PAGE_SIZE + 1}", f"list_jobs limit={MAX_PAGE_SIZE + 1}"]
    with pytest.raises(InvalidArgument) as caught:
        await jobs.list_jobs(principal(), page_size=-1, page_token="", with_items=False)
    assert [v.field for v in caught.value.violations] == ["pageSize"]


async def test_listing_with_a_garbage_token_names_page_token() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await service(MemoryJobs()).list_jobs(principal(), page_size=1, page_token="garbage", with_items=False)
    assert [v.field for v in caught.value.violations] == ["pageToken"]


async def test_cancel_needs_write_and_another_organisations_job_is_not_found() -> None:
    store = MemoryJobs()
    store.jobs["job1"] = job_view("job1", org="org-b")
    jobs = service(store)
    with pytest.raises(PermissionDenied):
        await jobs.cancel(principal(READ_SCOPE), "job1")
    with pytest.raises(NotFound):
        await jobs.cancel(principal(WRITE_SCOPE), "job1")
    assert store.jobs["job1"].state is JobState.STARTED
    store.jobs["job2"] = job_view("job2")
    assert (await jobs.cancel(principal(WRITE_SCOPE), "job2")).state is JobState.CANCELLED


# --- watch -----------------------------------------------------------------------------------


class Wakes:
    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self.events.append(event)
        try:
            yield event
        finally:
            self.events.remove(event)

    def wake(self) -> None:
        for event in self.events:
            event.set()


def log_event(job_id: str, sequence: int, kind: str, payload: dict[str, Any] | None = None) -> JobEvent:
    return JobEvent(job_id, sequence, kind, payload or {}, T0)


async def test_watch_sends_a_snapshot_then_each_event_until_the_final_one() -> None:
    store = MemoryJobs()
    store.jobs["job1"] = job_view("job1", last_sequence=1)
    store.events["job1"] = [log_event("job1", 1, "job_started")]
    wakes = Wakes()
    received: list[JobEvent] = []

    async def consume() -> None:
        async for event in watch(service(store), wakes, principal(READ_SCOPE), "job1", 0):
            received.append(event)

    task = asyncio.create_task(consume())
    for _ in range(50):
        if received and wakes.events:
            break
        await asyncio.sleep(0.01)
    assert [e.kind for e in received] == ["snapshot"]
    assert received[0].sequence == 1
    store.events["job1"].append(log_event("job1", 2, "item_finished"))
    wakes.wake()
    store.events["job1"].append(log_event("job1", 3, "job_finished", {"state": "success"}))
    wakes.wake()
    await asyncio.wait_for(task, 2)
    assert [(e.sequence, e.kind) for e in received] == [(1, "snapshot"), (2, "item_finished"), (3, "job_finished")]
    assert wakes.events == []


async def test_watch_resumes_after_a_sequence_without_duplicates() -> None:
    store = MemoryJobs()
    store.jobs["job1"] = job_view("job1", state=JobState.SUCCESS, last_sequence=3)
    store.events["job1"] = [
        log_event("job1", 1, "job_started"), log_event("job1", 2, "item_finished"),
        log_event("job1", 3, "job_finished"),
    ]
    events = [e async for e in watch(service(store), Wakes(), principal(), "job1", 1)]
    assert [e.sequence for e in events] == [2, 3]
    assert [e async for e in watch(service(store), Wakes(), principal(), "job1", 3)] == []


async def test_watch_of_a_finished_job_from_zero_is_just_the_snapshot() -> None:
    store = MemoryJobs()
    store.jobs["job1"] = job_view("job1", state=JobState.FAILED, last_sequence=3)
    events = [e async for e in watch(service(store), Wakes(), principal(), "job1", 0)]
    assert [e.kind for e in events] == ["snapshot"]
    assert events[0].final
    assert events[0].snapshot is not None and events[0].snapshot.state is JobState.FAILED


async def test_watch_refuses_a_negative_sequence() -> None:
    with pytest.raises(InvalidArgument) as caught:
        _ = [e async for e in watch(service(MemoryJobs()), Wakes(), principal(), "job1", -1)]
    assert [v.field for v in caught.value.violations] == ["afterSequence"]


def test_page_token_is_json_of_iso_time_and_id() -> None:
    token = encode_page_token(T0, "job1")
    padded = token + "=" * (-len(token) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == ["2024-05-01T12:00:00+00:00", "job1"]
