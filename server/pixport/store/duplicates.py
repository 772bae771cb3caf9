"""Near-duplicate search: the organisation's image with the closest perceptual hash."""

from __future__ import annotations

import dataclasses

import asyncpg

from pixport.store.queries import QUERIES
from pixport.store.queue import StoredImage

# pHash Hamming distance at or below which two images count as near-duplicates (of 64 bits).
NEAR_DUPLICATE_DISTANCE = 6


class DuplicateFinder:
    def __init__(self, pool: asyncpg.Pool, threshold: int = NEAR_DUPLICATE_DISTANCE) -> None:
        self._pool = pool
        self._threshold = threshold

    async def annotate(
        self, organization_id: str, system_name: str, external_id: str, stored: StoredImage
    ) -> StoredImage:
        if stored.phash is None:
            return stored
        row = await self._pool.fetchrow(
            QUERIES["nearest_phash"], organization_id, stored.phash, system_name, external_id
        )
        if row is None or row["distance"] > self._threshold:
            return stored
        analysis = {**stored.analysis, "duplicate_of": {"media_id": row["id"], "distance": row["distance"]}}
        return dataclasses.replace(stored, analysis=analysis)
