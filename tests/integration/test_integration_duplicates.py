"""DuplicateFinder against a real PostgreSQL: nearest perceptual hash by Hamming distance, per organisation."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
from integration_support import create, stored
from pixport.domain.duplicates import NEAR_DUPLICATE_DISTANCE, DuplicateFinder, NearestQuery
from pixport.runtime.nearest import CoalescedPhashIndex
from pixport.store.duplicates import PhashStore
from pixport.store.queue import QueueStore, StoredImage

pytestmark = pytest.mark.usefixtures("empty_queue")

BASE = 0x0F0F_1234_5678_9ABC


def signed(value: int) -> int:
    value &= 2**64 - 1
    return value - 2**64 if value >= 2**63 else value


def flip(value: int, bits: int) -> int:
    """`value` with its lowest `bits` bits inverted: Hamming distance `bits`."""
    return signed(value ^ ((1 << bits) - 1))


async def import_image(pool: asyncpg.Pool, org: str, external_id: str, phash: int | None,
                       system_name: str = "archive") -> str:
    await create(pool, org, external_id, system_name=system_name)
    queue = QueueStore(pool)
    [item] = await queue.claim("w", 60, 1)
    outcome = await queue.finish_imported(item, "w", stored(external_id.encode() + org.encode(), phash=phash))
    assert outcome is not None and outcome.image is not None
    return outcome.image.media_id


def candidate(phash: int | None) -> StoredImage:
    return stored(b"candidate", phash=phash)


@pytest.mark.parametrize("distance", [0, 1, 3, NEAR_DUPLICATE_DISTANCE])
async def test_a_near_duplicate_is_annotated(pool: asyncpg.Pool, org: str, distance: int) -> None:
    media_id = await import_image(pool, org, "original", signed(BASE))
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", candidate(flip(BASE, distance)))
    assert result.analysis["duplicate_of"] == {"media_id": media_id, "distance": distance}
    assert result.analysis["renditions"] == candidate(None).analysis["renditions"]  # the rest is kept


async def test_beyond_the_threshold_is_not_a_duplicate(pool: asyncpg.Pool, org: str) -> None:
    await import_image(pool, org, "original", signed(BASE))
    original = candidate(flip(BASE, NEAR_DUPLICATE_DISTANCE + 1))
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", original)
    assert "duplicate_of" not in result.analysis
    assert result == original


async def test_the_closest_image_wins(pool: asyncpg.Pool, org: str) -> None:
    await import_image(pool, org, "far", flip(BASE, 5))
    near = await import_image(pool, org, "near", flip(BASE, 2))
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", candidate(signed(BASE)))
    assert result.analysis["duplicate_of"] == {"media_id": near, "distance": 2}


async def test_negative_hashes_compare_bit_for_bit(pool: asyncpg.Pool, org: str) -> None:
    all_ones = await import_image(pool, org, "ones", -1)  # 0xffff_ffff_ffff_ffff
    # 0x7fff_ffff_ffff_ffff differs from it in the sign bit only.
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", candidate(2**63 - 1))
    assert result.analysis["duplicate_of"] == {"media_id": all_ones, "distance": 1}
    # 0x8000_0000_0000_0000 differs from it in 63 bits.
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", candidate(-(2**63)))
    assert "duplicate_of" not in result.analysis
    # 0xffff_ffff_ffff_fff0: both negative, 4 bits apart.
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", candidate(-16))
    assert result.analysis["duplicate_of"] == {"media_id": all_ones, "distance": 4}


async def test_only_the_same_organisation_is_searched(pool: asyncpg.Pool, org: str, other_org: str) -> None:
    await import_image(pool, other_org, "theirs", signed(BASE))
    result = await DuplicateFinder(PhashStore(pool)).annotate(org, "archive", "new", candidate(signed(BASE)))
    assert "duplicate_of" not in result.analysis


async def test_the_image_being_reimported_is_not_its_own_duplicate(pool: asyncpg.Pool, org: str) -> None:
    await import_image(pool, org, "photo", signed(BASE))
    finder = DuplicateFinder(PhashStore(pool))
    same_key = await finder.annotate(org, "archive", "photo", candidate(signed(BASE)))
    assert "duplicate_of" not in same_key.analysis
    other_system = await finder.annotate(org, "crm", "photo", candidate(signed(BASE)))
    assert other_system.analysis["duplicate_of"]["distance"] == 0


async def test_images_without_phash_are_ignored(pool: asyncpg.Pool, org: str) -> None:
    await import_image(pool, org, "svg", None)
    finder = DuplicateFinder(PhashStore(pool))
    assert "duplicate_of" not in (await finder.annotate(org, "archive", "new", candidate(signed(BASE)))).analysis
    unhashed = candidate(None)
    assert await finder.annotate(org, "archive", "new", unhashed) is unhashed


async def test_a_custom_threshold(pool: asyncpg.Pool, org: str) -> None:
    media_id = await import_image(pool, org, "original", signed(BASE))
    strict = await DuplicateFinder(PhashStore(pool), threshold=0).annotate(
        org, "archive", "new", candidate(flip(BASE, 1)))
    assert "duplicate_of" not in strict.analysis
    loose = await DuplicateFinder(PhashStore(pool), threshold=10).annotate(
        org, "archive", "new", candidate(flip(BASE, 10)))
    assert loose.analysis["duplicate_of"] == {"media_id": media_id, "distance": 10}


async def test_lookups_batched_together_answer_as_each_lookup_alone(
    pool: asyncpg.Pool, org: str, other_org: str
) -> None:
    rng = random.Random(11)
    bases = [rng.getrandbits(64) for _ in range(6)]
    for index, base in enumerate(bases):
        await import_image(pool, org, f"img-{index}", signed(base))
    await import_image(pool, other_org, "elsewhere", signed(bases[0]))
    queries = [NearestQuery(org, flip(base, distance), "archive", f"new-{index}")
               for index, (base, distance) in enumerate(zip(bases, [0, 2, 4, 6, 7, 9], strict=True))]
    queries += [
        NearestQuery(org, signed(bases[1]), "archive", "img-1"),  # its own row is not its duplicate
        NearestQuery(other_org, flip(bases[0], 1), "archive", "new-elsewhere"),
        NearestQuery(other_org, signed(bases[3]), "archive", "nothing-near"),
    ]
    store = PhashStore(pool)
    alone = [await store.nearest(*query, NEAR_DUPLICATE_DISTANCE) for query in queries]
    assert await store.nearest_many(queries, NEAR_DUPLICATE_DISTANCE) == alone
    coalesced = CoalescedPhashIndex(store)
    assert await asyncio.gather(*(coalesced.nearest(*query, NEAR_DUPLICATE_DISTANCE) for query in queries)) == alone
    assert [found.distance if found else None for found in alone] == [0, 2, 4, 6, None, None, None, 1, None]
    assert await store.nearest_many(queries, NEAR_DUPLICATE_DISTANCE + 4) == [
        await store.nearest(*query, NEAR_DUPLICATE_DISTANCE + 4) for query in queries
    ]
