"""Archive-scale benchmark: the queue claim, near-duplicate search and finishing an item, against backlogs
and libraries of growing size, in a private PostgreSQL migrated with the project's own migrations.

bench: run from the repository root with
    PYTHONPATH=server .venv/bin/python bench/scale.py [--quick]

Synthetic rows are written in bulk (INSERT ... SELECT generate_series, through the same triggers that keep
the counters and the pHash index), then the store's own calls are timed: each figure is the median of
repeated calls. `run(quick)` returns the figures (`make bench` merges them into its JSON); --quick stops at
100k rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from pixport.domain.duplicates import NEAR_DUPLICATE_DISTANCE
from pixport.domain.queue import StoredImage
from pixport.runtime.postgres import EmbeddedPostgres
from pixport.store.db import create_pool, migrate
from pixport.store.duplicates import PhashStore
from pixport.store.organizations import OrganizationStore
from pixport.store.queue import QueueStore

ORGANIZATIONS = 5
CLAIM_LIMIT = 8
REPEATS = 40
FILL_STEP = 100_000


def _label(count: int) -> str:
    return f"{count // 1_000_000}m" if count >= 1_000_000 else f"{count // 1_000}k"


async def _median_ms(call: Callable[[], Awaitable[object]], repeats: int = REPEATS) -> float:
    await call()  # warm: plan cache, buffers
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 3)


async def _add_pending(connection: asyncpg.Connection, organizations: list[str], count: int, tag: str) -> None:
    """`count` pending items spread over the organisations, one job per organisation and fill step."""
    per_org = count // len(organizations)
    for org in organizations:
        job_id = f"bench-{tag}-{org[:8]}"
        await connection.execute(
            "INSERT INTO import_jobs (id, organization_id, system_name, state, item_count, last_sequence)"
            " VALUES ($1, $2, 'bench', 'started', $3, 0)", job_id, org, per_org,
        )
        for start in range(0, per_org, FILL_STEP):
            await connection.execute(
                "INSERT INTO import_items (job_id, organization_id, position, external_id, url, title)"
                " SELECT $1, $2, n, 'e' || n, 'http://127.0.0.1/' || n || '.png', ''"
                " FROM generate_series($3, $4 - 1) AS n", job_id, org, start, min(per_org, start + FILL_STEP),
            )


async def _vacuum(connection: asyncpg.Connection) -> None:
    await connection.execute("VACUUM ANALYZE")


async def _claim_figures(pool: asyncpg.Pool, filler: asyncpg.Connection, sizes: list[int]) -> dict[str, float]:
    store = OrganizationStore(pool)
    organizations = [await store.upsert_organization(f"bench-queue-{n}") for n in range(ORGANIZATIONS)]
    queue = QueueStore(pool)
    figures: dict[str, float] = {}
    filled = 0

    async def claim_ms() -> float:
        started = time.perf_counter()
        claimed = await queue.claim("bench", 60, CLAIM_LIMIT)
        elapsed = (time.perf_counter() - started) * 1000
        assert len(claimed) == CLAIM_LIMIT
        # Back to pending (untimed), so the backlog keeps its size.
        await pool.execute(
            "UPDATE import_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL"
            " WHERE id = ANY($1::bigint[])", [item.id for item in claimed],
        )
        return elapsed

    for size in sizes:
        await _add_pending(filler, organizations, size - filled, _label(size))
        filled = size
        await _vacuum(filler)
        await claim_ms()  # warm
        samples = [await claim_ms() for _ in range(REPEATS)]
        figures[f"claim_ms_{_label(size)}"] = round(statistics.median(samples), 3)
        # The fastest call: what the statement costs when the shared machine lets it run.
        figures[f"claim_best_ms_{_label(size)}"] = round(min(samples), 3)
        print(f"claim at {size}: {figures[f'claim_ms_{_label(size)}']} ms", file=sys.stderr)
    return figures


def _random_phash(rng: random.Random) -> int:
    return rng.getrandbits(64) - (1 << 63)


async def _duplicate_figures(pool: asyncpg.Pool, filler: asyncpg.Connection, sizes: list[int]) -> dict[str, float]:
    org = await OrganizationStore(pool).upsert_organization("bench-library")
    index = PhashStore(pool)
    rng = random.Random(11)
    figures: dict[str, float] = {}
    filled = 0
    probes = iter([_random_phash(rng) for _ in range((REPEATS + 1) * len(sizes))])

    async def nearest() -> None:
        await index.nearest(org, next(probes), "bench", "new", NEAR_DUPLICATE_DISTANCE)

    for size in sizes:
        for start in range(filled, size, FILL_STEP):  # steps: each statement stays well inside the timeout
            await filler.execute(
                "INSERT INTO images (id, organization_id, system_name, external_id, sha256, format, mime_type,"
                " width, height, byte_size, phash)"
                " SELECT 'img-' || n, $1, 'bench', 'e' || n, md5(n::text), 'png', 'image/png', 1, 1, 1,"
                "        (floor(random() * 4294967296)::bigint << 32) | floor(random() * 4294967296)::bigint"
                " FROM generate_series($2, $3 - 1) AS n", org, start, min(size, start + FILL_STEP),
            )
        filled = size
        await _vacuum(filler)
        figures[f"nearest_duplicate_ms_{_label(size)}"] = await _median_ms(nearest)
        print(f"nearest at {size}: {figures[f'nearest_duplicate_ms_{_label(size)}']} ms", file=sys.stderr)
    return figures


async def _finish_figure(pool: asyncpg.Pool, filler: asyncpg.Connection, tag: str) -> dict[str, float]:
    org = await OrganizationStore(pool).upsert_organization(f"bench-finish-{tag}")
    await _add_pending(filler, [org], 1_000, f"finish-{tag}")
    queue = QueueStore(pool)
    rng = random.Random(5)
    samples = []
    for _ in range(REPEATS):
        [item] = await queue.claim("bench-finish", 60, 1)
        stored = StoredImage(
            sha256=f"{rng.getrandbits(256):064x}", format="png", mime_type="image/png", width=1, height=1,
            byte_size=1, analysis={}, phash=_random_phash(rng),
        )
        started = time.perf_counter()
        await queue.finish_imported(item, item.lease_owner, stored)
        samples.append((time.perf_counter() - started) * 1000)
    return {"finish_item_ms": round(statistics.median(samples), 3)}


async def _measure(dsn: str, quick: bool, parts: frozenset[str]) -> dict[str, float]:
    await migrate(dsn)
    pool = await create_pool(dsn, min_size=2, max_size=4)
    # Bulk fills are long statements: their own connection, without the pool's command timeout.
    filler = await asyncpg.connect(dsn)
    sizes = [1_000, 100_000] if quick else [1_000, 100_000, 1_000_000]
    figures: dict[str, float] = {}
    try:
        if "finish" in parts:
            figures |= await _finish_figure(pool, filler, "empty")  # first, with the other tables still small...
        if "claim" in parts:
            figures |= await _claim_figures(pool, filler, sizes)
        if "duplicates" in parts:
            figures |= await _duplicate_figures(pool, filler, sizes)
        if "finish" in parts:
            figures["finish_item_ms_after_fill"] = (await _finish_figure(pool, filler, "full"))["finish_item_ms"]
    finally:
        await filler.close()
        await pool.close()
    return figures


PARTS = frozenset({"claim", "duplicates", "finish"})


def run(quick: bool, parts: frozenset[str] = PARTS) -> dict[str, float]:
    """The scale figures (milliseconds), measured in a private PostgreSQL that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pixport-scale-") as root, EmbeddedPostgres(Path(root)).running() as pg:
        return asyncio.run(_measure(pg.dsn, quick, parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="stop at 100k rows")
    parser.add_argument("--parts", default=",".join(sorted(PARTS)), help="comma-separated subset of the parts")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, frozenset(args.parts.split(",")) & PARTS), indent=2))


if __name__ == "__main__":
    main()
