"""The perceptual-hash index: multi-index hashing over image_phash_chunks (migration 0007)."""

from __future__ import annotations

import asyncpg

from pixport.domain.duplicates import Nearest
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
