"""Keep the queue-depth gauges current from one periodic grouped count (bounded cardinality:
the TOP_ORGANIZATIONS organisations with most pending items by name, the rest as "other")."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from pixport.observability.metrics import QUEUE_ITEMS, QUEUE_PENDING_BY_ORGANIZATION, TOP_ORGANIZATIONS
from pixport.store.queue_depth import QueueDepth

log = logging.getLogger(__name__)
OTHER = "other"


def pending_by_organization(depths: Sequence[QueueDepth], top: int = TOP_ORGANIZATIONS) -> dict[str, int]:
    pending = Counter({d.organization: d.items for d in depths if d.status == "pending"})
    shown = dict(pending.most_common(top))
    rest = sum(pending.values()) - sum(shown.values())
    if rest or len(pending) > top:
        shown[OTHER] = rest
    return shown


class QueueGauges:
    def __init__(self, read: Callable[[], Awaitable[Sequence[QueueDepth]]]) -> None:
        self._read = read
        self._shown: set[str] = set()

    async def update(self) -> None:
        depths = await self._read()
        for state in ("pending", "running"):
            QUEUE_ITEMS.labels(state=state).set(sum(d.items for d in depths if d.status == state))
        by_org = pending_by_organization(depths)
        # Organisations that left the top N drop to 0 rather than keep a stale value.
        for organization in self._shown - by_org.keys():
            QUEUE_PENDING_BY_ORGANIZATION.labels(organization=organization).set(0)
        for organization, items in by_org.items():
            QUEUE_PENDING_BY_ORGANIZATION.labels(organization=organization).set(items)
        self._shown = set(by_org) | self._shown if len(self._shown) < 4 * TOP_ORGANIZATIONS else set(by_org)

    async def run(self, interval: float = 5.0) -> None:
        while True:
            try:
                await self.update()
            except Exception as error:  # the database may be away; the next round retries
                log.debug("queue depth not updated: %s", error)
            await asyncio.sleep(interval)
