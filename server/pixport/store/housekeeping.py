"""Retention of finished jobs' detail, and the blob ledger (see domain/blob_records.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from pixport.store.queries import QUERIES


class RetentionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def prune(self, older_than_days: float, *, jobs: int = 10, batch: int = 500) -> int:
        """Delete the items, events and settled webhook deliveries of up to `jobs` jobs finished more
        than `older_than_days` ago, `batch` rows per statement (each its own short transaction, so no
        long locks). Jobs themselves stay; a single import keeps its one item (its status reads it).
        Returns the rows deleted."""
        deleted = 0
        for job in await self._pool.fetch(QUERIES["jobs_to_prune"], older_than_days, jobs):
            kinds = ["prune_events", "prune_deliveries"]
            if job["kind"] != "single_import":
                kinds.insert(0, "prune_items")
            for query in kinds:
                while True:
                    status = await self._pool.execute(QUERIES[query], job["id"], batch)
                    count = int(status.rpartition(" ")[2])
                    deleted += count
                    if count < batch:
                        break
            await self._pool.execute(QUERIES["mark_job_pruned"], job["id"])
        return deleted


class BlobLedgerStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, keys: Sequence[str]) -> None:
        await self._pool.execute(QUERIES["record_blobs"], sorted(set(keys)))

    async def collect(
        self, grace_seconds: float, limit: int, delete: Callable[[list[str]], Awaitable[None]]
    ) -> list[str]:
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(QUERIES["lock_collectable_blobs"], grace_seconds, limit)
            keys = [row["key"] for row in rows]
            if keys:
                await delete(keys)  # under the rows' locks: a concurrent writer of these keys waits
                await connection.execute(QUERIES["forget_blobs"], keys)
        return keys
