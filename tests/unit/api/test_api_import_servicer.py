"""ImportServicer with an in-memory store: request parsing, authentication and error mapping end to end."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from pixport.api.context import ApiContext
from pixport.api.import_servicer import ImportServicer, batch_request
from pixport.domain.auth import READ_SCOPE, WRITE_SCOPE, Authenticator, ClientRecord, derive_client_secret, mint_token
from pixport.domain.batch import BatchRequest
from pixport.domain.imports import ImportJobs
from pixport.domain.records import JobState, JobView
from pixport.v1 import import_service_pb2

SERVER_KEY = b"servicer-test-key"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


class Directory:
    async def get_api_client(self, client_id: str) -> ClientRecord | None:
        if client_id != "client-1":
            return None
        return ClientRecord("client-1", "org-1", "acme", (READ_SCOPE, WRITE_SCOPE), 1, None)

    async def get_user(self, user_id: str) -> None:
        return None


class Jobs:
    def __init__(self) -> None:
        self.created: list[BatchRequest] = []

    async def create_job(self, job_id: str, organization_id: str, batch: BatchRequest, *admit: Any) -> str:
        self.created.append(batch)
        return job_id

    async def list_jobs(self, organization_id: str, *, limit: int, before: Any, with_items: bool) -> list[JobView]:
        return [JobView(id="job1", organization_id=organization_id, system_name="s", state=JobState.SUCCESS,
                        started_at=T0, finished_at=T0, item_count=0, last_sequence=2, items=())]


class Context:
    def __init__(self, authorization: str | None) -> None:
        self.metadata = [("authorization", authorization)] if authorization else []
        self.aborted: tuple[grpc.StatusCode, str, dict[str, Any]] | None = None

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, dict(trailing_metadata))
        raise grpc.aio.AbortError()


def token() -> str:
    secret = derive_client_secret(SERVER_KEY, "client-1", 1)
    return mint_token(secret, issuer="client-1", scopes=(READ_SCOPE, WRITE_SCOPE))


def servicer(jobs: Jobs) -> ImportServicer:
    api = ApiContext(Authenticator(Directory(), SERVER_KEY), None, "http://127.0.0.1:8080")
    return ImportServicer(api, ImportJobs(cast(Any, jobs)), cast(Any, None))


def request(metadata: dict[str, Any] | None = None, **fields: Any) -> import_service_pb2.CreateImportJobRequest:
    message = import_service_pb2.CreateImportJobRequest(system_name="archive", **fields)
    image = message.images.add(url="HTTPS://Example.com/cat.jpg", id="1", file_name="cat")
    if metadata is not None:
        image.metadata.update(metadata)
    return message


async def call(method: Callable[..., Any], message: Any, context: Context) -> Any:
    try:
        return await method(message, context)
    except grpc.aio.AbortError:
        return None


def bad_request_fields(context: Context) -> list[str]:
    assert context.aborted is not None
    status = status_pb2.Status.FromString(context.aborted[2]["grpc-status-details-bin"])
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            return [v.field for v in bad_request.field_violations]
    return []


def test_batch_request_reads_every_field() -> None:
    message = request({"caption": "bar"}, webhook="https://h.example.com/", request_id="r1")
    message.context.update({"run": 7})
    batch = batch_request(message)
    assert (batch.system_name, batch.webhook, batch.request_id, batch.context) == (
        "archive", "https://h.example.com/", "r1", {"run": 7.0}
    )
    [image] = batch.images
    assert (image.url, image.external_id, image.title, image.metadata) == (
        "HTTPS://Example.com/cat.jpg", "1", "cat", {"caption": "bar"}
    )


def test_batch_request_without_context_has_none() -> None:
    assert batch_request(request()).context is None


async def test_create_import_job() -> None:
    jobs = Jobs()
    context = Context(f"Bearer {token()}")
    response = await call(servicer(jobs).CreateImportJob, request(), context)
    assert context.aborted is None
    assert len(response.id) == 16
    assert [i.url for i in jobs.created[0].images] == ["https://example.com/cat.jpg"]


async def test_create_without_a_token_is_unauthenticated() -> None:
    jobs = Jobs()
    context = Context(None)
    await call(servicer(jobs).CreateImportJob, request(), context)
    assert context.aborted is not None
    assert context.aborted[0] is grpc.StatusCode.UNAUTHENTICATED
    assert "www-authenticate" in context.aborted[2]
    assert jobs.created == []


async def test_an_invalid_batch_is_invalid_argument_naming_the_fields() -> None:
    context = Context(f"Bearer {token()}")
    message = import_service_pb2.CreateImportJobRequest(system_name="")
    await call(servicer(Jobs()).CreateImportJob, message, context)
    assert context.aborted is not None
    assert context.aborted[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(context) == ["systemName", "images"]


@pytest.mark.parametrize("number", [math.nan, math.inf])
async def test_a_non_finite_number_in_metadata_is_an_invalid_argument(number: float) -> None:
    jobs = Jobs()
    context = Context(f"Bearer {token()}")
    await call(servicer(jobs).CreateImportJob, request({"score": number}), context)
    assert context.aborted is not None
    assert context.aborted[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(context) == ["images[0].metadata"]
    assert jobs.created == []


async def test_list_import_jobs() -> None:
    context = Context(f"Bearer {token()}")
    message = import_service_pb2.ListImportJobsRequest(page_size=10)
    response = await call(servicer(Jobs()).ListImportJobs, message, context)
    assert context.aborted is None
    assert [job.id for job in response.import_jobs] == ["job1"]
    assert response.next_page_token == ""


def _caller_context(size: int) -> dict[str, Any]:
    """{"count":1,"b":"x…"}: `size` bytes as the caller's compact JSON."""
    return {"count": 1, "b": "x" * (size - len('{"count":1,"b":""}'))}


async def test_a_caller_context_over_8192_bytes_is_refused() -> None:
    context = Context(f"Bearer {token()}")
    message = request()
    message.context.update(_caller_context(8193))
    await call(servicer(Jobs()).CreateImportJob, message, context)
    assert context.aborted is not None
    assert bad_request_fields(context) == ["context"]


async def test_a_caller_context_of_exactly_8192_bytes_is_accepted() -> None:
    jobs = Jobs()
    context = Context(f"Bearer {token()}")
    message = request()
    message.context.update(_caller_context(8192))
    await call(servicer(jobs).CreateImportJob, message, context)
    assert context.aborted is None
    assert len(jobs.created) == 1
