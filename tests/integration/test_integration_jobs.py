"""JobStore against a real PostgreSQL: create, read, list with paging, request-id idempotency, cancel."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from integration_support import assert_contiguous_log, batch, claim_all, create, create_job, event_log
from pixport.domain.ids import new_job_id
from pixport.domain.imports import decode_page_token, encode_page_token
from pixport.domain.records import ItemStatus, JobState
from pixport.store.jobs import JobStore
from pixport.store.organizations import OrganizationStore
from pixport.store.queries import QUERIES
from pixport.store.queue import QueueStore


async def test_create_then_get(pool: asyncpg.Pool, org: str) -> None:
    jobs = JobStore(pool)
    job_id = new_job_id()
    assert await create_job(pool, job_id, org, batch("a", "b", "c", context={"run": 1})) == job_id
    job = await jobs.get_job(org, job_id)
    assert job is not None
    assert (job.id, job.organization_id, job.system_name) == (job_id, org, "archive")
    assert job.state is JobState.STARTED
    assert not job.finished
    assert job.finished_at is None
    assert job.item_count == 3
    assert job.last_sequence == 1
    assert job.context == {"run": 1}
    assert job.webhook_url is None
    assert job.started_at.tzinfo is not None
    assert job.items is not None
    assert [(i.external_id, i.title, i.status, i.reason, i.image) for i in job.items] == [
        (e, f"title {e}", ItemStatus.PENDING, None, None) for e in ("a", "b", "c")
    ]
    assert await event_log(pool, job_id) == [
        (1, "job_started", {"overview": {"total": 3, "success": 0, "skipped": 0, "failed": 0, "cancelled": 0,
                                         "pending": 3}}),
    ]


async def test_get_without_items(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "a")
    job = await JobStore(pool).get_job(org, job_id, with_items=False)
    assert job is not None
    assert job.items is None


async def test_another_organisation_cannot_read_the_job(pool: asyncpg.Pool, org: str, other_org: str) -> None:
    job_id = await create(pool, org, "a")
    jobs = JobStore(pool)
    assert await jobs.get_job(other_org, job_id) is None
    assert await jobs.get_job(org, "no-such-job") is None
    assert await jobs.list_jobs(other_org, limit=10, before=None, with_items=False) == []


async def test_request_id_makes_create_idempotent(pool: asyncpg.Pool, org: str, other_org: str) -> None:
    jobs = JobStore(pool)
    first = await create_job(pool, new_job_id(), org, batch("a", request_id="req-1"))
    again = await create_job(pool, new_job_id(), org, batch("x", "y", request_id="req-1"))
    assert again == first
    listed = await jobs.list_jobs(org, limit=10, before=None, with_items=True)
    assert [job.id for job in listed] == [first]
    assert listed[0].items is not None
    assert [i.external_id for i in listed[0].items] == ["a"]
    # Request ids are per organisation, and jobs without one never collide.
    elsewhere = await create_job(pool, new_job_id(), other_org, batch("a", request_id="req-1"))
    assert elsewhere != first
    plain = [await create_job(pool, new_job_id(), org, batch("a")) for _ in range(2)]
    assert len({first, *plain}) == 3


async def test_list_jobs_pages_newest_first_without_gaps_or_repeats(pool: asyncpg.Pool, org: str) -> None:
    created = [await create(pool, org, f"e{n}") for n in range(7)]
    jobs = JobStore(pool)
    seen: list[str] = []
    before: tuple[datetime, str] | None = None
    while True:
        page = await jobs.list_jobs(org, limit=3, before=before, with_items=False)
        seen += [job.id for job in page]
        if len(page) < 3:
            break
        # Through the page token, as the API does.
        before = decode_page_token(encode_page_token(page[-1].started_at, page[-1].id))
    assert seen == list(reversed(created))


async def test_list_jobs_breaks_ties_on_the_same_instant_by_id(pool: asyncpg.Pool, org: str) -> None:
    created = [await create(pool, org, "e") for _ in range(5)]
    instant = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    await pool.execute("UPDATE import_jobs SET created_at = $1 WHERE organization_id = $2", instant, org)
    jobs = JobStore(pool)
    seen: list[str] = []
    before: tuple[datetime, str] | None = None
    for _ in range(5):
        page = await jobs.list_jobs(org, limit=2, before=before, with_items=False)
        seen += [job.id for job in page]
        if not page:
            break
        assert all(job.started_at == instant for job in page)
        before = decode_page_token(encode_page_token(page[-1].started_at, page[-1].id))
    assert seen == sorted(created, reverse=True)


async def test_list_jobs_with_items_groups_items_by_job(pool: asyncpg.Pool, org: str) -> None:
    first = await create(pool, org, "a", "b")
    second = await create(pool, org, "c")
    listed = await JobStore(pool).list_jobs(org, limit=10, before=None, with_items=True)
    assert [(job.id, [i.external_id for i in job.items or ()]) for job in listed] == [
        (second, ["c"]), (first, ["a", "b"]),
    ]


async def test_cancel_marks_unfinished_items_and_the_job_cancelled(
    pool: asyncpg.Pool, org: str, other_org: str, empty_queue: None
) -> None:
    jobs, queue = JobStore(pool), QueueStore(pool)
    job_id = await create(pool, org, "a", "b", "c")
    [running, *_rest] = await queue.claim("worker-1", 60, 1)
    assert running.job_id == job_id

    assert await jobs.cancel_job(other_org, job_id) is False
    untouched = await jobs.get_job(org, job_id)
    assert untouched is not None and untouched.state is JobState.STARTED

    assert await jobs.cancel_job(org, job_id) is True
    job = await jobs.get_job(org, job_id)
    assert job is not None
    assert job.state is JobState.CANCELLED
    assert job.finished
    assert job.finished_at is not None
    assert job.items is not None
    assert [(i.status, i.reason) for i in job.items] == [(ItemStatus.CANCELLED, "job cancelled")] * 3

    # The worker that held an item has lost it; nothing is left to claim.
    assert await queue.finish_failed(running, "worker-1", "too late") is None
    assert await claim_all(queue, "worker-2") == []

    log = await assert_contiguous_log(pool, job_id)
    assert [kind for _, kind, _ in log] == ["job_started"] + ["item_finished"] * 3 + ["job_finished"]
    assert log[-1][2] == {"state": "cancelled", "overview": {
        "total": 3, "success": 0, "skipped": 0, "failed": 0, "cancelled": 3, "pending": 0}}

    # Cancelling again changes nothing.
    assert await jobs.cancel_job(org, job_id) is True
    assert len(await event_log(pool, job_id)) == len(log)


async def test_cancel_of_unknown_job_is_false(pool: asyncpg.Pool, org: str) -> None:
    assert await JobStore(pool).cancel_job(org, "no-such-job") is False


async def test_cancel_of_a_finished_job_keeps_its_state(pool: asyncpg.Pool, org: str, empty_queue: None) -> None:
    job_id = await create(pool, org, "a")
    queue = QueueStore(pool)
    [item] = await claim_all(queue, "w")
    assert await queue.finish_failed(item, "w", "HTTP 404 Not Found from origin") is not None
    assert await JobStore(pool).cancel_job(org, job_id) is True
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.items is not None and job.items[0].status is ItemStatus.FAILED


async def test_api_clients_roundtrip(pool: asyncpg.Pool) -> None:
    orgs = OrganizationStore(pool)
    created = await orgs.create_api_client("client-org", ("public-api:read",))
    assert created.secret_generation == 1
    assert created.previous_generation_until is None
    found = await orgs.get_api_client(created.id)
    assert found == created
    assert await orgs.get_api_client("../x") is None
    assert await orgs.get_api_client("unknown") is None
    assert await orgs.upsert_organization("client-org") == created.organization_id


@pytest.mark.parametrize("count", [1, 20])
async def test_items_keep_submission_order(pool: asyncpg.Pool, org: str, count: int) -> None:
    ids = [f"id-{n:03d}" for n in reversed(range(count))]
    job_id = await create(pool, org, *ids)
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.items is not None
    assert [i.external_id for i in job.items] == ids


async def test_event_times_rise_with_their_sequences_across_concurrent_batches(pool: asyncpg.Pool, org: str) -> None:
    # The first batch's transaction begins, the second takes the job's lock and appends, then the first
    # appends after it: its later sequence must not carry the earlier time of its transaction's start.
    job_id = await create(pool, org, "a", "b")
    async with pool.acquire() as first, pool.acquire() as second, first.transaction():
        await first.execute("SELECT pg_sleep(0.05)")  # now() of `first` is fixed from here
        async with second.transaction():
            await second.execute("SELECT 1 FROM import_jobs WHERE id = $1 FOR UPDATE", job_id)
            await second.fetchrow(QUERIES["append_finished_events"], job_id, [{"n": "second"}])
        await first.execute("SELECT 1 FROM import_jobs WHERE id = $1 FOR UPDATE", job_id)
        await first.fetchrow(QUERIES["append_finished_events"], job_id, [{"n": "first"}])
        first_began = await first.fetchval("SELECT now()")
    rows = await pool.fetch(
        "SELECT sequence, payload, created_at FROM job_events WHERE job_id = $1 AND kind = 'item_finished'"
        " ORDER BY sequence", job_id,
    )
    assert [row["payload"] for row in rows] == [{"n": "second"}, {"n": "first"}]
    assert rows[0]["created_at"] < rows[1]["created_at"]
    assert rows[1]["created_at"] > first_began
