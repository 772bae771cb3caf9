"""The perceptual-hash index: multi-index hashing over image_phash_chunks (migration 0007)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from pixport.domain.duplicates import Nearest, NearestQuery
from pixport.store.queries import QUERIES

# The index finds every hash within this many bits (4 chunks of 16 bits, one-bit neighbourhoods).
INDEXED_DISTANCE = 7


class PhashStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def nearest(
        self, organization_id: str, phash: int, system_name: str, external_id: str, within: int
    ) -> Nearest | None:
        # Beyond the indexed distance only a scan is exact (kept for wider custom thresholds).
        query = "nearest_phash" if within <= INDEXED_DISTANCE else "nearest_phash_scan"
        row = await self._pool.fetchrow(QUERIES[query], organization_id, phash, system_name, external_id, within)
        return Nearest(row["id"], row["distance"]) if row is not None else None

    async def nearest_many(self, queries: Sequence[NearestQuery], within: int) -> list[Nearest | None]:
        """`nearest` for each query, in order, in one statement."""
        if within > INDEXED_DISTANCE:
            return [await self.nearest(*query, within) for query in queries]
        rows = await self._pool.fetch(
            QUERIES["nearest_phash_many"], [query.organization_id for query in queries],
            [query.phash for query in queries], [query.system_name for query in queries],
            [query.external_id for query in queries], within,
        )
        found: list[Nearest | None] = [None] * len(queries)
        for row in rows:
            found[row["position"] - 1] = Nearest(row["id"], row["distance"])
        return found
