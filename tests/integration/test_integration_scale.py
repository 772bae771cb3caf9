"""Archive scale on a real PostgreSQL: turns under a big backlog, counters against a recount, batched
finishes, and the pHash index against brute force."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
from integration_support import assert_contiguous_log, bulk_job, create, event_log, stored
from pixport.domain.duplicates import NEAR_DUPLICATE_DISTANCE
from pixport.domain.queue import ClaimedItem, Failure, Imported
from pixport.domain.records import ItemStatus
from pixport.store.duplicates import PhashStore
from pixport.store.jobs import JobStore, overview, recount
from pixport.store.queue import QueueStore

pytestmark = pytest.mark.usefixtures("empty_queue")


async def test_a_single_item_is_claimed_in_the_next_round_behind_a_100k_backlog(
    pool: asyncpg.Pool, org: str, other_org: str
) -> None:
    big = await bulk_job(pool, org, 100_000)
    try:
        queue = QueueStore(pool)
        first = await queue.claim("w", 60, 1)
        single = await create(pool, other_org, "lonely")
        # The big organisation was just served: the newcomer is next, then the turns alternate.
        rounds = [await queue.claim("w", 60, 1) for _ in range(3)]
        assert [item.organization_id for item in first] == [org]
        assert [[item.organization_id for item in claimed] for claimed in rounds] == [[other_org], [org], [org]]
        assert rounds[0][0].job_id == single
        await create(pool, other_org, "a", "b")
        batch = await queue.claim("w", 60, 4)
        assert sorted(item.organization_id for item in batch) == sorted([org, org, other_org, other_org])
        assert await pool.fetchval(
            "SELECT pending FROM queue_organizations WHERE organization_id = $1", org
        ) == 100_000 - 5
    finally:
        await pool.execute("DELETE FROM import_jobs WHERE id = $1", big)
    assert await pool.fetchval("SELECT pending FROM queue_organizations WHERE organization_id = $1", org) == 0


async def test_concurrent_claimers_across_organisations_never_share_an_item(
    pool: asyncpg.Pool, org: str, other_org: str
) -> None:
    jobs = [await create(pool, owner, *(f"e{n}" for n in range(60))) for owner in (org, other_org)]
    queue = QueueStore(pool)
    claimed: list[list[ClaimedItem]] = [[] for _ in range(6)]

    async def claimer(n: int) -> None:
        while found := await queue.claim(f"w{n}", 60, 3):
            claimed[n] += found
            await asyncio.sleep(0)

    await asyncio.gather(*(claimer(n) for n in range(6)))
    ids = [item.id for found in claimed for item in found]
    expected = await pool.fetch("SELECT id FROM import_items WHERE job_id = ANY($1::text[])", jobs)
    assert len(ids) == len(set(ids)) == 120
    assert set(ids) == {row["id"] for row in expected}
    assert not any(item.reclaimed for found in claimed for item in found)


async def test_an_expired_lease_is_reported_as_reclaimed(pool: asyncpg.Pool, org: str) -> None:
    await create(pool, org, "a", "b")
    queue = QueueStore(pool)
    [first] = await queue.claim("w1", 0.1, 1)
    await asyncio.sleep(0.3)
    claimed = await queue.claim("w2", 60, 2)
    assert [(item.id == first.id, item.reclaimed) for item in claimed] == [(True, True), (False, False)]


async def test_counters_equal_a_recount_after_random_finishes_retries_and_cancels(
    pool: asyncpg.Pool, org: str
) -> None:
    rng = random.Random(17)
    queue, jobs = QueueStore(pool), JobStore(pool)
    job_ids = [await create(pool, org, *(f"j{j}-{n}" for n in range(rng.randint(3, 12)))) for j in range(6)]
    for job_id in rng.sample(job_ids, 2):
        for item in await queue.claim("w", 60, 4):
            await queue.finish_failed(item, "w", "early")
        await jobs.cancel_job(org, job_id)
    while claimed := await queue.claim("w", 60, 5):
        for item in claimed:
            action = rng.choice(["import", "fail", "retry", "batch"])
            if action == "import":
                await queue.finish_imported(item, "w", stored(item.external_id.encode()))
            elif action == "fail":
                await queue.finish_failed(item, "w", "HTTP 404")
            elif action == "retry" and item.attempts < 3:
                await queue.requeue(item, "w", 0, "retrying")
            else:
                await queue.finish_failed_many([Failure(item, "gone")])
        async with pool.acquire() as connection:
            for job_id in job_ids:
                assert await overview(connection, job_id) == await recount(connection, job_id)
    async with pool.acquire() as connection:
        for job_id in job_ids:
            counted = await recount(connection, job_id)
            assert await overview(connection, job_id) == counted
            assert counted.pending == 0
            job = await jobs.get_job(org, job_id, with_items=False)
            assert job is not None and job.finished and job.overview == counted
            await assert_contiguous_log(pool, job_id)


async def test_a_batched_finish_keeps_order_and_sequences_across_jobs(pool: asyncpg.Pool, org: str) -> None:
    first, second = await create(pool, org, "a", "b", "c"), await create(pool, org, "x", "y")
    queue = QueueStore(pool)
    claimed = await queue.claim("w", 60, 10)
    assert len(claimed) == 5
    stale = claimed[0]
    await queue.requeue(stale, "w", 3600, None)  # its lease is gone: the batch must leave it alone
    outcomes = await queue.finish_failed_many([Failure(item, f"404 {item.external_id}") for item in claimed])
    assert outcomes[0] is None
    assert all(o is not None and o.status is ItemStatus.FAILED for o in outcomes[1:])
    for job_id in (first, second):
        log = await event_log(pool, job_id)
        assert [sequence for sequence, _, _ in log] == list(range(1, len(log) + 1))
        finished = [payload["externalId"] for _, kind, payload in log if kind == "item_finished"]
        expected = [item.external_id for item in claimed[1:] if item.job_id == job_id]
        assert finished == expected  # the batch's order, each item once
    await assert_contiguous_log(pool, second)
    assert (await JobStore(pool).get_job(org, first, with_items=False)).state == "started"  # type: ignore[union-attr]


async def test_a_crash_between_two_batched_finishes_loses_and_duplicates_nothing(
    pool: asyncpg.Pool, org: str
) -> None:
    job_id = await create(pool, org, *(f"e{n}" for n in range(6)))
    queue = QueueStore(pool)
    claimed = await queue.claim("dying", 0.2, 6)
    assert [o is not None for o in await queue.finish_failed_many([Failure(i, "404") for i in claimed[:3]])] == [
        True, True, True
    ]
    # A batch that fails half-way (NUL is not valid text) commits nothing of itself.
    with pytest.raises(asyncpg.PostgresError):
        await queue.finish_failed_many([Failure(claimed[3], "404"), Failure(claimed[4], "bad\x00")])
    # ...the worker dies here; its leases expire and another worker takes the rest.
    await asyncio.sleep(0.4)
    again = await queue.claim("next", 60, 6)
    assert sorted(item.id for item in again) == sorted(item.id for item in claimed[3:])
    assert all(item.reclaimed for item in again)
    assert await queue.finish_failed_many([Failure(i, "late") for i in claimed[3:]]) == [None, None, None]
    assert all(await queue.finish_failed_many([Failure(i, "404") for i in again]))
    log = await assert_contiguous_log(pool, job_id)
    finished = [payload["externalId"] for _, kind, payload in log if kind == "item_finished"]
    assert sorted(finished) == [f"e{n}" for n in range(6)]  # each exactly once


def _signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _at_distance(rng: random.Random, value: int, distance: int) -> int:
    mask = 0
    for bit in rng.sample(range(64), distance):
        mask |= 1 << bit
    return value ^ mask


async def test_the_phash_index_finds_what_a_full_scan_finds(pool: asyncpg.Pool, org: str) -> None:
    rng = random.Random(2024)
    library = [rng.getrandbits(64) for _ in range(20_000)]
    queries: list[tuple[int, int]] = []
    for distance in range(9):
        for _ in range(15):
            probe = rng.getrandbits(64)
            library.append(_at_distance(rng, probe, distance))
            queries.append((distance, probe))
    await pool.execute(
        "INSERT INTO images (id, organization_id, system_name, external_id, sha256, format, mime_type, width,"
        " height, byte_size, phash)"
        " SELECT $1 || '-' || n, $1, 'archive', 'h' || n, '', 'png', 'image/png', 1, 1, 1, hash"
        " FROM unnest($2::bigint[]) WITH ORDINALITY AS entry(hash, n)",
        org, [_signed(value) for value in library],
    )
    index = PhashStore(pool)
    for planted, probe in queries:
        distances = [(value ^ probe).bit_count() for value in library]
        best = min(distances)
        found = await index.nearest(org, _signed(probe), "archive", "new", NEAR_DUPLICATE_DISTANCE)
        if best > NEAR_DUPLICATE_DISTANCE:
            assert found is None, (planted, best)
        else:
            assert found is not None, (planted, best)
            position = int(found.media_id.rpartition("-")[2]) - 1
            assert (found.distance, distances[position]) == (best, best)
        assert best <= planted


async def test_a_batched_import_finish_upserts_each_image_once_in_order(pool: asyncpg.Pool, org: str) -> None:
    job_id = await create(pool, org, "p1", "p2", "p1")
    queue = QueueStore(pool)
    claimed = await queue.claim("w", 60, 3)
    assert [item.external_id for item in claimed] == ["p1", "p2", "p1"]
    outcomes = await queue.finish_imported_many([
        Imported(claimed[0], stored(b"one")), Imported(claimed[1], stored(b"two")),
        Imported(claimed[2], stored(b"one")),
    ])
    assert [o.status if o else None for o in outcomes] == [ItemStatus.SUCCESS, ItemStatus.SUCCESS, ItemStatus.SKIPPED]
    assert outcomes[0] is not None and outcomes[2] is not None and outcomes[0].image and outcomes[2].image
    assert outcomes[0].image.media_id == outcomes[2].image.media_id
    log = await assert_contiguous_log(pool, job_id)
    assert [payload["externalId"] for _, kind, payload in log if kind == "item_finished"] == ["p1", "p2", "p1"]
    assert await queue.finish_imported_many([Imported(claimed[1], stored(b"again"))]) == [None]
    assert await pool.fetchval("SELECT count(*) FROM images WHERE organization_id = $1", org) == 2


async def test_a_mixed_batch_keeps_order_and_a_crash_between_two_batches_loses_and_duplicates_nothing(
    pool: asyncpg.Pool, org: str
) -> None:
    """Imports and failures of two jobs in one finish_many: events in the batch's order with consecutive
    sequences, one row per image; a batch that fails half-way commits nothing, and its items, claimed again
    after their leases expire, finish exactly once."""
    first, second = await create(pool, org, "m0", "m1", "m2", "m3"), await create(pool, org, "n0", "n1")
    queue = QueueStore(pool)
    claimed = await queue.claim("dying", 0.3, 6)
    by_id = {item.external_id: item for item in claimed}
    batch: list[Failure | Imported] = [
        Imported(by_id["m0"], stored(b"m0")), Failure(by_id["n0"], "404"), Imported(by_id["m1"], stored(b"m1")),
        Failure(by_id["m2"], "404"),
    ]
    outcomes = await queue.finish_many(batch)
    assert [o.status if o else None for o in outcomes] == [ItemStatus.SUCCESS, ItemStatus.FAILED,
                                                          ItemStatus.SUCCESS, ItemStatus.FAILED]
    # The summary the batch built without reading the row back is the row's.
    for outcome in (outcomes[0], outcomes[2]):
        assert outcome is not None and outcome.image is not None
        row = await pool.fetchrow("SELECT width, mime_type, sha256 FROM images WHERE id = $1", outcome.image.media_id)
        assert row is not None
        assert (row["width"], row["mime_type"], row["sha256"]) == (
            outcome.image.width, outcome.image.mime_type, outcome.image.sha256)
    with pytest.raises(asyncpg.PostgresError):  # fails half-way (NUL is not valid text): nothing of it stays
        await queue.finish_many([Imported(by_id["m3"], stored(b"m3")), Failure(by_id["n1"], "bad\x00")])
    await asyncio.sleep(0.5)  # ...the worker died; its leases expire
    again = {item.external_id: item for item in await queue.claim("next", 60, 6)}
    assert sorted(again) == ["m3", "n1"] and all(item.reclaimed for item in again.values())
    assert await queue.finish_many([Imported(by_id["m3"], stored(b"m3")), Failure(by_id["n1"], "late")]) == [None, None]
    assert all(await queue.finish_many([Failure(again["n1"], "404"), Imported(again["m3"], stored(b"m3"))]))
    first_log, second_log = await assert_contiguous_log(pool, first), await assert_contiguous_log(pool, second)
    assert [p["externalId"] for _, kind, p in first_log if kind == "item_finished"] == ["m0", "m1", "m2", "m3"]
    assert [p["externalId"] for _, kind, p in second_log if kind == "item_finished"] == ["n0", "n1"]
    assert await pool.fetchval("SELECT count(*) FROM images WHERE organization_id = $1", org) == 3
    assert (await overview(pool, first)).success == 3 and (await recount(pool, first)).success == 3  # type: ignore[arg-type]
