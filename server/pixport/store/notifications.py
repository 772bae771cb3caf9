"""One LISTEN connection per process, fanning job-event notifications out to watchers.

Workers in any process commit an event and `pg_notify('pixport_job_events', 'job:seq')`; every
server process holding watchers of that job wakes them, and they read the log from the database.
A lost connection wakes everyone (they re-read, so nothing is missed) and is re-established."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import asyncpg

from pixport.store.db import is_connection_error

log = logging.getLogger(__name__)
CHANNEL = "pixport_job_events"
CONNECT_TIMEOUT_SECONDS = 5.0


class EventHub:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._keep_connected(), name="event-hub")

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        await connection.add_listener(CHANNEL, self._on_notify)
        connection.add_termination_listener(lambda _connection: self._lost.set())
        self._connection = connection
        self._lost.clear()

    async def _keep_connected(self) -> None:
        while True:
            await self._lost.wait()
            self._wake_all()
            delay = 0.2
            while True:
                try:
                    await self._connect()
                    break
                except Exception as error:
                    if not is_connection_error(error) and not isinstance(error, asyncpg.PostgresError):
                        raise
                    log.warning("event hub reconnect failed: %s; retrying in %.1f s", error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            log.info("event hub listening again")
            self._wake_all()

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        job_id = str(payload).rpartition(":")[0]
        for event in self._watchers.get(job_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._watchers.values():
            for event in events:
                event.set()

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the job may have new log entries. Subscribe before reading the
        log, clear before each read, so no notification falls between a read and a wait."""
        event = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._watchers[job_id]

    @property
    def watcher_count(self) -> int:
        return sum(len(events) for events in self._watchers.values())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()


class Listener:
    """A connection LISTENing on channels that re-establishes itself when lost. Wake-ups only:
    whoever is woken reads the database, so after a reconnect every callback is called once
    (anything notified meanwhile is then read), and a periodic sweep covers the gap."""

    def __init__(self, dsn: str, callbacks: dict[str, Callable[..., None]]) -> None:
        self._dsn = dsn
        self._callbacks = callbacks
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._keep_connected(), name="listener")

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        for channel, callback in self._callbacks.items():
            await connection.add_listener(channel, callback)
        connection.add_termination_listener(lambda _connection: self._lost.set())
        self._connection = connection
        self._lost.clear()

    async def _keep_connected(self) -> None:
        while True:
            await self._lost.wait()
            delay = 0.2
            while True:
                try:
                    await self._connect()
                    break
                except Exception as error:
                    if not is_connection_error(error) and not isinstance(error, asyncpg.PostgresError):
                        raise
                    log.warning("LISTEN reconnect failed: %s; retrying in %.1f s", error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            log.info("listening again on %s", ", ".join(self._callbacks))
            for channel, callback in self._callbacks.items():
                callback(self._connection, 0, channel, "")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()


async def listen(dsn: str, callbacks: dict[str, Callable[..., None]]) -> Listener:
    """A self-reconnecting LISTEN on each channel; the caller closes it."""
    listener = Listener(dsn, callbacks)
    await listener.start()
    return listener
