"""Domain errors → gRPC status codes with google.rpc details and response headers."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from pixport.api.errors import ERROR_DOMAIN, domain_errors, status_for
from pixport.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Unauthenticated,
)


def unpack(status: status_pb2.Status) -> list[Message]:
    kinds: list[type[Message]] = [
        error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.QuotaFailure,
        error_details_pb2.RetryInfo,
    ]
    found: list[Message] = []
    for detail in status.details:
        for kind in kinds:
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found.append(message)
                break
        else:
            raise AssertionError(f"unexpected detail {detail.type_url}")
    return found


def quota() -> QuotaExceeded:
    return QuotaExceeded("daily image limit reached", limit=100, used=90, requested=20, retry_after_seconds=3600)


@pytest.mark.parametrize(
    ("error", "grpc_code", "rpc_code", "reason"),
    [
        (InvalidArgument([FieldViolation("systemName", "is required")]), grpc.StatusCode.INVALID_ARGUMENT,
         code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (NotFound("import job 'x' not found"), grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND, "NOT_FOUND"),
        (Unauthenticated("token expired"), grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED,
         "UNAUTHENTICATED"),
        (PermissionDenied("no scope"), grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED,
         "PERMISSION_DENIED"),
        (quota(), grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED, "USAGE_LIMIT_EXCEEDED"),
        (FailedPrecondition("not yet"), grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION,
         "FAILED_PRECONDITION"),
        (DomainError("something else"), grpc.StatusCode.INTERNAL, code_pb2.INTERNAL, "INTERNAL"),
    ],
)
def test_each_domain_error_maps_to_its_code_with_error_info(
    error: DomainError, grpc_code: grpc.StatusCode, rpc_code: int, reason: str
) -> None:
    status_code, status, _headers = status_for(error)
    assert status_code is grpc_code
    assert status.code == rpc_code
    assert status.message == error.message
    info = unpack(status)[0]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == (reason, ERROR_DOMAIN)


def test_invalid_argument_lists_every_field_violation() -> None:
    violations = [FieldViolation(f"images[{i}].url", "is required") for i in range(7)]
    _code, status, headers = status_for(InvalidArgument(violations))
    _info, bad_request = unpack(status)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        (f"images[{i}].url", "is required") for i in range(7)
    ]
    assert headers == []
    assert status.message.endswith("; and 2 more")


def test_quota_exceeded_has_quota_failure_retry_info_and_retry_after() -> None:
    _code, status, headers = status_for(quota())
    _info, failure, retry = unpack(status)
    assert isinstance(failure, error_details_pb2.QuotaFailure)
    assert [(v.subject, v.description) for v in failure.violations] == [
        ("images-per-day", "daily image limit reached")
    ]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 3600
    assert headers == [("retry-after", "3600")]


def test_unauthenticated_carries_www_authenticate() -> None:
    _code, status, headers = status_for(Unauthenticated("token expired"))
    assert headers == [("www-authenticate", 'Bearer realm="pixport", Token realm="pixport"')]
    assert len(status.details) == 1


@pytest.mark.parametrize("error", [NotFound("x"), PermissionDenied("x"), FailedPrecondition("x"), DomainError("x")])
def test_other_errors_have_only_error_info_and_no_headers(error: DomainError) -> None:
    _code, status, headers = status_for(error)
    assert headers == []
    assert [type(d) for d in unpack(status)] == [error_details_pb2.ErrorInfo]


def test_details_are_type_urls_of_google_rpc() -> None:
    _code, status, _headers = status_for(quota())
    assert [d.type_url for d in status.details] == [
        "type.googleapis.com/google.rpc.ErrorInfo",
        "type.googleapis.com/google.rpc.QuotaFailure",
        "type.googleapis.com/google.rpc.RetryInfo",
    ]
    assert all(isinstance(d, any_pb2.Any) for d in status.details)


# --- domain_errors: the servicer wrapper ---------------------------------------------------------


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str, Any] | None = None

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, tuple(trailing_metadata))
        raise grpc.aio.AbortError()


async def test_domain_errors_abort_with_status_details_in_the_trailers() -> None:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        async with domain_errors(context):  # type: ignore[arg-type]
            raise Unauthenticated("token expired")
    assert context.aborted is not None
    code, details, trailers = context.aborted
    assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "token expired")
    trailer_map = dict(trailers)
    assert trailer_map["www-authenticate"] == 'Bearer realm="pixport", Token realm="pixport"'
    status = status_pb2.Status.FromString(trailer_map["grpc-status-details-bin"])
    assert status.code == code_pb2.UNAUTHENTICATED
    assert status.message == "token expired"


async def test_unexpected_errors_become_internal_without_internals() -> None:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        async with domain_errors(context):  # type: ignore[arg-type]
            raise RuntimeError("password=hunter2 at /srv/secret/path")
    assert context.aborted is not None
    code, details, _trailers = context.aborted
    assert code is grpc.StatusCode.INTERNAL
    assert "hunter2" not in details
    assert "/srv" not in details


async def test_domain_errors_passes_through_success_and_abort_errors() -> None:
    context = FakeContext()
    async with domain_errors(context):  # type: ignore[arg-type]
        pass
    with pytest.raises(grpc.aio.AbortError):
        async with domain_errors(context):  # type: ignore[arg-type]
            raise grpc.aio.AbortError()
    assert context.aborted is None


def test_conflict_is_aborted_which_rest_answers_409() -> None:
    import grpc
    from pixport.api.errors import status_for
    from pixport.domain.errors import Conflict

    code, status, _headers = status_for(Conflict("busy"))
    assert code is grpc.StatusCode.ABORTED and status.code == 10 and status.message == "busy"
