"""Concurrent calls share one batched call: the round trip of many journeys at once, paid once.

Dead links fail fast and small images are through their pixels in a few milliseconds, so many journeys
make the same database call within the same moment (record their blob keys, look up near-duplicates,
finish). One statement each costs a round trip, a parse/bind and (for writes) a commit. A Coalescer sits
in front of a batched call: the first caller starts a flush; callers arriving while that flush is in
flight wait for the next one. No timer delays anything: a lone call is flushed after one loop turn, and
batches grow only while the database is the bottleneck. Each caller gets its own result; a failed batch
fails every caller of that batch, none silently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 100


class Coalescer(Generic[T, R]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[Sequence[R]]], max_batch: int = MAX_BATCH,
                 name: str = "coalesced-calls") -> None:
        self._flush_batch = flush
        self._max_batch = max_batch
        self._name = name
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, value: T) -> R:
        """`value`'s own result from the batch it joins."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((value, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=self._name)
        # A cancelled caller's value may still go out with its batch: the same as a cancellation arriving
        # just after a single call's commit.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # one loop turn: calls of journeys running in this same turn join
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
            try:
                results = await self._flush_batch([value for value, _ in batch])
                if len(results) != len(batch):
                    raise ValueError(f"{self._name}: {len(results)} results for a batch of {len(batch)}")
            except Exception as error:  # every caller of this batch sees it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
