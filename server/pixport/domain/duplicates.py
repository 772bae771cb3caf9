"""Near-duplicates: an import whose perceptual hash is close to an earlier image's is marked as such."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pixport.domain.queue import StoredImage

# pHash Hamming distance at or below which two images count as near-duplicates (of 64 bits).
NEAR_DUPLICATE_DISTANCE = 6


@dataclass(frozen=True)
class Nearest:
    media_id: str
    distance: int


class NearestQuery(NamedTuple):
    """One image's question to the index: its organisation's closest image, other than itself."""

    organization_id: str
    phash: int
    system_name: str
    external_id: str


class PhashIndex(Protocol):
    """Finds the organisation's closest image within `within` bits (ties: the earliest), other than
    the image stored under the given key; exact (the same answer as a full scan)."""

    async def nearest(
        self, organization_id: str, phash: int, system_name: str, external_id: str, within: int
    ) -> Nearest | None: ...


class DuplicateFinder:
    def __init__(self, index: PhashIndex, threshold: int = NEAR_DUPLICATE_DISTANCE) -> None:
        self._index = index
        self._threshold = threshold

    async def annotate(
        self, organization_id: str, system_name: str, external_id: str, stored: StoredImage
    ) -> StoredImage:
        if stored.phash is None:
            return stored
        found = await self._index.nearest(organization_id, stored.phash, system_name, external_id, self._threshold)
        if found is None or found.distance > self._threshold:
            return stored
        analysis = {**stored.analysis, "duplicate_of": {"media_id": found.media_id, "distance": found.distance}}
        return dataclasses.replace(stored, analysis=analysis)
