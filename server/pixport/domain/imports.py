"""Batch import use cases: create, read, list, cancel. Knows nothing of gRPC or SQL."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from pixport.domain.auth import READ_SCOPE, WRITE_SCOPE, Principal
from pixport.domain.batch import BatchRequest, validate_batch
from pixport.domain.errors import FieldViolation, InvalidArgument, NotFound
from pixport.domain.idempotency import fingerprint, replay_check
from pixport.domain.ids import looks_like_id, new_job_id
from pixport.domain.jobs import Admission
from pixport.domain.quota import admission
from pixport.domain.records import JobEvent, JobView


class JobStore(Protocol):
    """What the batch use cases need of the store (implemented by store.jobs.JobStore)."""

    async def create_job(
        self, job_id: str, organization_id: str, batch: BatchRequest, admit: Admission, *,
        fingerprint: str | None = None, replay: Callable[[str | None], None] | None = None,
    ) -> str: ...

    async def get_job(self, organization_id: str, job_id: str, *, with_items: bool = True) -> JobView | None: ...

    async def list_jobs(
        self, organization_id: str, *, limit: int, before: tuple[datetime, str] | None, with_items: bool
    ) -> list[JobView]: ...

    async def cancel_job(self, organization_id: str, job_id: str) -> bool: ...

    async def events_after(self, job_id: str, after_sequence: int) -> list[JobEvent]: ...

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_FULL_PAGE_SIZE = 10


def encode_page_token(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    if len(token) > 512:
        raise InvalidArgument([FieldViolation("pageToken", "is not a token returned by a previous call")])
    try:
        padded = token + "=" * (-len(token) % 4)
        created_at, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created_at), str(job_id)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise InvalidArgument([FieldViolation("pageToken", "is not a token returned by a previous call")]) from None


class ImportJobs:
    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs

    async def create(self, principal: Principal, request: BatchRequest) -> str:
        principal.require(WRITE_SCOPE)
        batch = validate_batch(request)  # validation first: an invalid batch is a 400 whatever the quota
        if not batch.request_id:
            return await self._jobs.create_job(
                new_job_id(), principal.organization_id, batch, admission(len(batch.images))
            )
        expected = fingerprint(batch)
        return await self._jobs.create_job(
            new_job_id(), principal.organization_id, batch, admission(len(batch.images)),
            fingerprint=expected, replay=replay_check(batch.request_id, expected),
        )

    async def get(self, principal: Principal, job_id: str, *, with_items: bool = True) -> JobView:
        principal.require(READ_SCOPE)
        if not job_id:
            raise InvalidArgument([FieldViolation("id", "is required")])
        # Unknown, malformed and other organisations' ids all read the same: not found.
        job = await self._jobs.get_job(principal.organization_id, job_id, with_items=with_items) \
            if looks_like_id(job_id) else None
        if job is None:
            raise NotFound(f"import job {job_id[:64]!r} not found")
        return job

    async def list_jobs(
        self, principal: Principal, *, page_size: int, page_token: str, with_items: bool
    ) -> tuple[list[JobView], str]:
        principal.require(READ_SCOPE)
        if page_size < 0:
            raise InvalidArgument([FieldViolation("pageSize", "must not be negative")])
        # A full job can hold 1000 items: keep a full page well under the gRPC message limit.
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_FULL_PAGE_SIZE if with_items else MAX_PAGE_SIZE)
        before = decode_page_token(page_token) if page_token else None
        jobs = await self._jobs.list_jobs(
            principal.organization_id, limit=size + 1, before=before, with_items=with_items
        )
        next_token = ""
        if len(jobs) > size:
            jobs = jobs[:size]
            next_token = encode_page_token(jobs[-1].started_at, jobs[-1].id)
        return jobs, next_token

    async def cancel(self, principal: Principal, job_id: str) -> JobView:
        principal.require(WRITE_SCOPE)
        if not looks_like_id(job_id) or not await self._jobs.cancel_job(principal.organization_id, job_id):
            raise NotFound(f"import job {job_id[:64]!r} not found")
        return await self.get(principal, job_id)

    async def events_after(self, job_id: str, after_sequence: int) -> list[JobEvent]:
        return await self._jobs.events_after(job_id, after_sequence)


class EventSource(Protocol):
    def subscribe(self, job_id: str) -> AbstractContextManager[asyncio.Event]: ...


async def watch(
    jobs: ImportJobs, source: EventSource, principal: Principal, job_id: str, after_sequence: int
) -> AsyncIterator[JobEvent]:
    """The job's state (when starting from 0), then each log entry after it as it is committed,
    ending after the final one. Resuming from a sequence gives no duplicates and no gaps."""
    if after_sequence < 0:
        raise InvalidArgument([FieldViolation("afterSequence", "must not be negative")])
    job = await jobs.get(principal, job_id, with_items=after_sequence == 0)
    if after_sequence > job.last_sequence:
        # Nothing at or below it would ever be sent: the stream would never end.
        raise InvalidArgument([FieldViolation(
            "afterSequence", f"is past the end of the job's log (last sequence {job.last_sequence})"
        )])
    with source.subscribe(job.id) as wake:
        last = after_sequence
        if after_sequence == 0:
            job = await jobs.get(principal, job_id)  # re-read after subscribing: nothing can fall between
            yield JobEvent(job.id, job.last_sequence, "snapshot", {}, datetime.now(UTC), snapshot=job)
            if job.finished:
                return
            last = job.last_sequence
        elif job.finished and after_sequence >= job.last_sequence:
            return
        while True:
            wake.clear()
            for event in await jobs.events_after(job.id, last):
                yield event
                last = event.sequence
                if event.final:
                    return
            await wake.wait()
