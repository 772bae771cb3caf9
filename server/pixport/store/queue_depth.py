"""Cheap reads of the queue's size, for metrics and admission control."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from pixport.store.queries import QUERIES


@dataclass(frozen=True)
class QueueDepth:
    status: str
    organization: str
    items: int


async def queue_depth(pool: asyncpg.Pool) -> list[QueueDepth]:
    rows = await pool.fetch(QUERIES["queue_depth"])
    return [QueueDepth(row["status"], row["organization"], row["items"]) for row in rows]
