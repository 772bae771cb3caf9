"""pixport.v1.ImportService: parse, authorise, call the domain, convert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from pixport.api import convert
from pixport.api.auth import authenticate
from pixport.api.context import ApiContext
from pixport.api.errors import domain_errors
from pixport.api.idempotency import with_idempotency_key
from pixport.domain.batch import BatchRequest, ImageSpec
from pixport.domain.imports import EventSource, ImportJobs, watch
from pixport.domain.quota import StreamSlots
from pixport.v1 import import_job_pb2, import_service_pb2, import_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


def batch_request(request: import_service_pb2.CreateImportJobRequest) -> BatchRequest:
    return BatchRequest(
        system_name=request.system_name,
        webhook=request.webhook,
        context=convert.plain_struct(request.context, "context") if request.HasField("context") else None,
        request_id=request.request_id,
        images=tuple(
            ImageSpec(
                url=image.url, external_id=image.id, title=image.file_name,
                metadata=convert.plain_struct(image.metadata, f"images[{index}].metadata"),
                media_type=image.media_type,
            )
            for index, image in enumerate(request.images)
        ),
    )


class ImportServicer(import_service_pb2_grpc.ImportServiceServicer):
    def __init__(self, api: ApiContext, jobs: ImportJobs, hub: EventSource, streams: StreamSlots | None = None) -> None:
        self._api = api
        self._jobs = jobs
        self._hub = hub
        self._streams = streams or StreamSlots()

    async def CreateImportJob(
        self, request: import_service_pb2.CreateImportJobRequest, context: Context
    ) -> import_service_pb2.CreateImportJobResponse:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            job_id = await self._jobs.create(principal, with_idempotency_key(batch_request(request), context))
        return import_service_pb2.CreateImportJobResponse(id=job_id)

    async def GetImportJob(
        self, request: import_service_pb2.GetImportJobRequest, context: Context
    ) -> import_job_pb2.ImportJob:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            job = await self._jobs.get(principal, request.id)
        return convert.import_job(job, self._api.urls(context))

    async def ListImportJobs(
        self, request: import_service_pb2.ListImportJobsRequest, context: Context
    ) -> import_service_pb2.ListImportJobsResponse:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            jobs, next_token = await self._jobs.list_jobs(
                principal, page_size=request.page_size, page_token=request.page_token,
                with_items=request.view == import_service_pb2.IMPORT_JOB_VIEW_FULL,
            )
        urls = self._api.urls(context)
        return import_service_pb2.ListImportJobsResponse(
            import_jobs=[convert.import_job(job, urls) for job in jobs], next_page_token=next_token
        )

    async def CancelImportJob(
        self, request: import_service_pb2.CancelImportJobRequest, context: Context
    ) -> import_job_pb2.ImportJob:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            job = await self._jobs.cancel(principal, request.id)
        return convert.import_job(job, self._api.urls(context))

    async def WatchImportJob(
        self, request: import_service_pb2.WatchImportJobRequest, context: Context
    ) -> AsyncIterator[import_job_pb2.ImportJobEvent]:
        urls = self._api.urls(context)
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            with self._streams.hold(principal.organization_id):
                async for event in watch(self._jobs, self._hub, principal, request.id, request.after_sequence):
                    yield convert.job_event(event, urls)
