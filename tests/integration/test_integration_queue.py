"""QueueStore against a real PostgreSQL: concurrent claims, leases, outcomes, the upsert and the job's end."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from integration_support import assert_contiguous_log, claim_all, create, stored
from pixport.domain.records import ItemStatus, JobState
from pixport.store.images import ImageStore
from pixport.store.jobs import JobStore
from pixport.store.queue import ClaimedItem, QueueStore

pytestmark = pytest.mark.usefixtures("empty_queue")


async def claim_one(queue: QueueStore, owner: str, lease_seconds: float = 60.0) -> ClaimedItem:
    claimed = await queue.claim(owner, lease_seconds, 1)
    assert len(claimed) == 1, claimed
    return claimed[0]


async def test_claimed_item_carries_what_the_worker_needs(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "a", system_name="crm")
    item = await claim_one(QueueStore(pool), "w1")
    assert (item.job_id, item.organization_id, item.position, item.external_id) == (job_id, org, 0, "a")
    assert (item.url, item.title, item.metadata, item.media_type) == ("https://example.com/a.jpg", "title a",
                                                                        {"e": "a"}, "")
    assert (item.system_name, item.attempts) == ("crm", 1)
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.items is not None
    assert job.items[0].status is ItemStatus.PENDING  # running is reported as pending


async def test_claims_come_in_submission_order_and_respect_the_limit(pool: asyncpg.Pool, org: str) -> None:
    await create(pool, org, *(f"e{n}" for n in range(5)))
    queue = QueueStore(pool)
    first = await queue.claim("w", 60, 3)
    second = await queue.claim("w", 60, 3)
    assert [i.external_id for i in first] == ["e0", "e1", "e2"]
    assert [i.external_id for i in second] == ["e3", "e4"]
    assert await queue.claim("w", 60, 3) == []


async def claim_concurrently(queue: QueueStore, job_id: str, owners: int) -> dict[str, list[int]]:
    """`owners` claim loops at once, two items at a time, until nothing is left; item ids by owner."""
    by_owner: dict[str, list[int]] = {f"w{n}": [] for n in range(owners)}

    async def claimer(owner: str) -> None:
        while found := await queue.claim(owner, 60, 2):
            by_owner[owner] += [item.id for item in found]
            assert all(item.job_id == job_id for item in found)
            await asyncio.sleep(0)

    await asyncio.gather(*(claimer(owner) for owner in by_owner))
    return by_owner


async def test_concurrent_claimers_never_share_an_item(pool: asyncpg.Pool, org: str) -> None:
    queue = QueueStore(pool)
    for _round in range(3):
        job_id = await create(pool, org, *(f"e{n}" for n in range(50)))
        by_owner = await claim_concurrently(queue, job_id, 4)
        claimed = [item_id for ids in by_owner.values() for item_id in ids]
        expected = {r["id"] for r in await pool.fetch("SELECT id FROM import_items WHERE job_id = $1", job_id)}
        assert len(claimed) == len(set(claimed)) == 50  # disjoint
        assert set(claimed) == expected  # complete
        assert sum(1 for ids in by_owner.values() if ids) >= 2  # the claimers did run side by side
        owners = await pool.fetch("SELECT id, lease_owner FROM import_items WHERE job_id = $1", job_id)
        owner_of = {item_id: owner for owner, ids in by_owner.items() for item_id in ids}
        assert {r["id"]: r["lease_owner"] for r in owners} == owner_of


async def test_an_expired_lease_is_reclaimed_and_the_first_owner_loses_it(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "a")
    queue = QueueStore(pool)
    first = await claim_one(queue, "w1", lease_seconds=0.1)
    await asyncio.sleep(0.3)
    second = await claim_one(queue, "w2")
    assert second.id == first.id
    assert second.attempts == 2
    assert await queue.finish_imported(first, "w1", stored(b"one")) is None
    assert await queue.finish_failed(first, "w1", "late") is None
    outcome = await queue.finish_failed(second, "w2", "HTTP 500 Internal Server Error from origin")
    assert outcome is not None and outcome.status is ItemStatus.FAILED
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.state is JobState.FAILED
    await assert_contiguous_log(pool, job_id)


async def test_a_live_lease_is_not_reclaimed(pool: asyncpg.Pool, org: str) -> None:
    await create(pool, org, "a")
    queue = QueueStore(pool)
    item = await claim_one(queue, "w1", lease_seconds=60)
    assert await queue.claim("w2", 60, 10) == []
    assert await queue.finish_failed(item, "w2", "not mine") is None  # only the owner may finish it
    assert await queue.finish_failed(item, "w1", "timeout") is not None


async def test_requeue(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "a")
    queue = QueueStore(pool)
    item = await claim_one(queue, "w1")
    assert await queue.requeue(item, "someone-else", 0, "retry") is False
    assert await queue.requeue(item, "w1", 60, "HTTP 503 from origin; retrying") is True
    assert await queue.claim("w2", 60, 10) == []  # not due yet
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.items is not None
    assert (job.items[0].status, job.items[0].reason) == (ItemStatus.PENDING, None)
    await pool.execute("UPDATE import_items SET available_at = now() WHERE id = $1", item.id)
    again = await claim_one(queue, "w2")
    assert (again.id, again.attempts) == (item.id, 2)


async def test_a_new_key_is_created_then_skipped_then_updated_in_place(pool: asyncpg.Pool, org: str) -> None:
    queue, images = QueueStore(pool), ImageStore(pool)

    job1 = await create(pool, org, "photo-1")
    created = await queue.finish_imported(await claim_one(queue, "w"), "w", stored(b"v1", renditions=("fit2000",)))
    assert created is not None
    assert (created.status, created.reason) == (ItemStatus.SUCCESS, None)
    assert created.image is not None
    media_id = created.image.media_id
    assert created.image.renditions == ("fit2000",)
    record = await images.get_image(org, media_id)
    assert record is not None
    assert (record.system_name, record.external_id, record.title) == ("archive", "photo-1", "title photo-1")
    assert record.sha256 == stored(b"v1").sha256

    job2 = await create(pool, org, "photo-1")
    skipped = await queue.finish_imported(await claim_one(queue, "w"), "w", stored(b"v1"))
    assert skipped is not None
    assert (skipped.status, skipped.reason) == (ItemStatus.SKIPPED, "already exists")
    assert skipped.image is not None and skipped.image.media_id == media_id

    job3 = await create(pool, org, "photo-1")
    updated = await queue.finish_imported(await claim_one(queue, "w"), "w", stored(b"version two"))
    assert updated is not None
    assert (updated.status, updated.reason) == (ItemStatus.SUCCESS, None)
    assert updated.image is not None and updated.image.media_id == media_id
    record = await images.get_image(org, media_id)
    assert record is not None
    assert record.sha256 == stored(b"version two").sha256
    assert record.byte_size == len(b"version two")
    assert record.updated_at > record.created_at
    assert await pool.fetchval("SELECT count(*) FROM images WHERE organization_id = $1", org) == 1

    for job_id, status, reason in ((job1, ItemStatus.SUCCESS, None), (job2, ItemStatus.SKIPPED, "already exists"),
                                   (job3, ItemStatus.SUCCESS, None)):
        job = await JobStore(pool).get_job(org, job_id)
        assert job is not None and job.items is not None
        assert job.state is JobState.SUCCESS
        assert job.finished_at is not None
        [item] = job.items
        assert (item.status, item.reason) == (status, reason)
        assert item.image is not None and item.image.media_id == media_id
        log = await assert_contiguous_log(pool, job_id)
        assert [kind for _, kind, _ in log] == ["job_started", "item_finished", "job_finished"]
        assert log[1][2]["status"] == status.value
        assert log[1][2]["image"]["mediaId"] == media_id
        assert log[2][2]["state"] == "success"


async def test_the_same_external_id_in_another_system_or_organisation_is_another_image(
    pool: asyncpg.Pool, org: str, other_org: str
) -> None:
    queue = QueueStore(pool)
    media_ids = set()
    for owner_org, system in ((org, "archive"), (org, "crm"), (other_org, "archive")):
        await create(pool, owner_org, "same-id", system_name=system)
        outcome = await queue.finish_imported(await claim_one(queue, "w"), "w", stored(b"same bytes"))
        assert outcome is not None and outcome.status is ItemStatus.SUCCESS
        assert outcome.image is not None
        media_ids.add(outcome.image.media_id)
    assert len(media_ids) == 3
    # Another organisation cannot read the image.
    [theirs] = [m for m in media_ids if await ImageStore(pool).get_image(other_org, m) is not None]
    assert await ImageStore(pool).get_image(org, theirs) is None


async def test_a_job_with_one_import_and_one_failure_succeeds(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "good", "bad")
    queue = QueueStore(pool)
    good, bad = await queue.claim("w", 60, 2)
    assert await queue.finish_failed(bad, "w", "not an image: text/html") is not None
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.state is JobState.STARTED  # one still pending
    assert await queue.finish_imported(good, "w", stored(b"good")) is not None
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.items is not None
    assert job.state is JobState.SUCCESS
    assert [(i.status, i.reason) for i in job.items] == [
        (ItemStatus.SUCCESS, None), (ItemStatus.FAILED, "not an image: text/html"),
    ]
    assert job.items[1].image is None
    log = await assert_contiguous_log(pool, job_id)
    assert [payload.get("externalId") for _, kind, payload in log if kind == "item_finished"] == ["bad", "good"]
    assert log[-1][2] == {"state": "success", "overview": {
        "total": 2, "success": 1, "skipped": 0, "failed": 1, "cancelled": 0, "pending": 0}}
    assert job.last_sequence == len(log)


async def test_a_job_where_everything_fails_fails(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "a", "b", "c")
    queue = QueueStore(pool)
    for item in await claim_all(queue, "w"):
        assert await queue.finish_failed(item, "w", "timeout") is not None
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.state is JobState.FAILED
    log = await assert_contiguous_log(pool, job_id)
    assert len(log) == 5
    assert log[-1][2]["state"] == "failed"


async def test_concurrent_workers_finishing_one_job_keep_the_log_contiguous(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, *(f"e{n}" for n in range(24)))
    queue = QueueStore(pool)

    async def work(owner: str) -> None:
        while found := await queue.claim(owner, 60, 1):
            for item in found:
                if item.position % 3:
                    assert await queue.finish_imported(item, owner, stored(item.external_id.encode())) is not None
                else:
                    assert await queue.finish_failed(item, owner, "timeout") is not None

    await asyncio.gather(*(work(f"w{n}") for n in range(4)))
    job = await JobStore(pool).get_job(org, job_id)
    assert job is not None and job.state is JobState.SUCCESS
    log = await assert_contiguous_log(pool, job_id)
    assert len(log) == 26
    assert log[-1][2]["overview"] == {"total": 24, "success": 16, "skipped": 0, "failed": 8, "cancelled": 0,
                                      "pending": 0}


@pytest.mark.parametrize("same_bytes", [True, False])
async def test_concurrent_imports_of_one_key_end_with_one_image(
    pool: asyncpg.Pool, org: str, same_bytes: bool
) -> None:
    jobs = [await create(pool, org, "shared-key") for _ in range(4)]
    queue = QueueStore(pool)
    items = await claim_all(queue, "w")
    assert sorted(i.job_id for i in items) == sorted(jobs)
    contents = [b"same" if same_bytes else f"version {n}".encode() for n in range(4)]
    outcomes = await asyncio.gather(*(
        queue.finish_imported(item, "w", stored(content)) for item, content in zip(items, contents, strict=True)
    ))
    assert all(o is not None and o.image is not None for o in outcomes)
    media_ids = {o.image.media_id for o in outcomes if o is not None and o.image is not None}
    assert len(media_ids) == 1
    statuses = sorted(o.status.value for o in outcomes if o is not None)
    assert statuses == (["skipped"] * 3 + ["success"] if same_bytes else ["success"] * 4)
    assert await pool.fetchval("SELECT count(*) FROM images WHERE organization_id = $1", org) == 1
    for job_id in jobs:
        await assert_contiguous_log(pool, job_id)


async def test_heartbeat_keeps_an_item_claimed_past_its_lease(pool: asyncpg.Pool, org: str) -> None:
    await create(pool, org, "held")
    queue = QueueStore(pool)
    [item] = await queue.claim("holder", 0.3, 1)
    await asyncio.sleep(0.2)
    await queue.extend_leases([item], 0.6)
    await asyncio.sleep(0.3)  # past the first lease, inside the extended one
    assert await queue.claim("thief", 60, 1) == []
    assert await queue.requeue(item, item.lease_owner, 0, None, refund=True) is True
    [again] = await queue.claim("next", 60, 1)
    assert again.id == item.id and again.attempts == item.attempts  # the handed-back attempt was refunded


async def test_organisations_take_turns(pool: asyncpg.Pool, org: str, other_org: str) -> None:
    await create(pool, org, *(f"big{n}" for n in range(20)))
    await create(pool, other_org, "small")  # submitted after the big batch
    claimed = await QueueStore(pool).claim("w", 60, 2)
    assert {item.organization_id for item in claimed} == {org, other_org}
    assert {item.external_id for item in claimed} == {"big0", "small"}
