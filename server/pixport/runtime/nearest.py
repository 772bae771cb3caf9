"""Near-duplicate lookups of journeys finishing together share one statement.

Small images reach their duplicate check within the same moment; one statement each was 9 % of the worker's
GIL samples. A Coalescer (runtime/coalesce.py) puts the lookups that arrive together into one
`nearest_many`; each caller gets the same answer its own lookup would have given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pixport.domain.duplicates import Nearest, NearestQuery
from pixport.runtime.coalesce import Coalescer


class BatchPhashIndex(Protocol):
    async def nearest_many(self, queries: Sequence[NearestQuery], within: int) -> list[Nearest | None]: ...


class CoalescedPhashIndex:
    """The domain's PhashIndex over a store with `nearest_many`."""

    def __init__(self, inner: BatchPhashIndex) -> None:
        self._inner = inner
        self._by_threshold: dict[int, Coalescer[NearestQuery, Nearest | None]] = {}

    async def nearest(
        self, organization_id: str, phash: int, system_name: str, external_id: str, within: int
    ) -> Nearest | None:
        lookups = self._by_threshold.get(within)
        if lookups is None:
            async def flush(queries: list[NearestQuery]) -> list[Nearest | None]:
                return await self._inner.nearest_many(queries, within)

            lookups = self._by_threshold[within] = Coalescer(flush, name=f"nearest-within-{within}")
        return await lookups.submit(NearestQuery(organization_id, phash, system_name, external_id))
