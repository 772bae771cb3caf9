"""Domain errors → gRPC status with google.rpc details (BadRequest, ErrorInfo, QuotaFailure)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from pixport.domain.errors import (
    Conflict,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Unauthenticated,
)
from pixport.domain.idempotency import IdempotencyKeyReused
from pixport.store.db import is_connection_error

log = logging.getLogger(__name__)
ERROR_DOMAIN = "pixport"
INTERNAL_MESSAGE = "internal error; it has been logged"

_CODES: list[tuple[type[DomainError], grpc.StatusCode, int, str]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    (NotFound, grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND, "NOT_FOUND"),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED, "UNAUTHENTICATED"),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED, "PERMISSION_DENIED"),
    (QuotaExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED, "USAGE_LIMIT_EXCEEDED"),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
    (IdempotencyKeyReused, grpc.StatusCode.ALREADY_EXISTS, code_pb2.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED"),
    # ABORTED is gRPC's concurrency conflict; the transcoder answers it with HTTP 409.
    (Conflict, grpc.StatusCode.ABORTED, code_pb2.ABORTED, "CONFLICT"),
]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_for(error: DomainError) -> tuple[grpc.StatusCode, status_pb2.Status, list[tuple[str, str]]]:
    status_code, rpc_code, reason = next(
        ((code, rpc, why) for error_type, code, rpc, why in _CODES if isinstance(error, error_type)),
        (grpc.StatusCode.INTERNAL, code_pb2.INTERNAL, "INTERNAL"),
    )
    status = status_pb2.Status(code=rpc_code, message=error.message)
    status.details.append(_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)))
    headers: list[tuple[str, str]] = []
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ])
        status.details.append(_pack(bad_request))
    elif isinstance(error, QuotaExceeded):
        status.details.append(_pack(error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(subject="images-per-day", description=error.message)
        ])))
        status.details.append(_pack(error_details_pb2.RetryInfo(
            retry_delay={"seconds": error.retry_after_seconds}
        )))
        headers.append(("retry-after", str(error.retry_after_seconds)))
    elif isinstance(error, Unauthenticated):
        headers.append(("www-authenticate", 'Bearer realm="pixport", Token realm="pixport"'))
    return status_code, status, headers


async def abort(context: grpc.aio.ServicerContext, error: DomainError) -> NoReturn:  # type: ignore[type-arg]
    status_code, status, headers = status_for(error)
    await context.abort(
        status_code, error.message,
        trailing_metadata=(*headers, ("grpc-status-details-bin", status.SerializeToString())),
    )
    raise AssertionError("unreachable")  # context.abort raises


@asynccontextmanager
async def domain_errors(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:  # type: ignore[type-arg]
    """Map domain errors to statuses; anything unexpected becomes INTERNAL without internals."""
    try:
        yield
    except grpc.aio.AbortError:
        raise
    except DomainError as error:
        await abort(context, error)
    except Exception as error:
        if is_connection_error(error):  # the database is away: the caller should retry, not give up
            await abort_unavailable(context)
        log.exception("unexpected error serving a request")
        status = status_pb2.Status(code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE)
        status.details.append(_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN)))
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE,
                            trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),))



# Seconds a caller should wait before retrying while the database is unavailable.
UNAVAILABLE_RETRY_SECONDS = 2


async def abort_unavailable(context: grpc.aio.ServicerContext) -> NoReturn:  # type: ignore[type-arg]
    """UNAVAILABLE with RetryInfo and a `retry-after` trailer (REST: 503 with Retry-After)."""
    message = "the database is unavailable; retry shortly"
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.append(_pack(error_details_pb2.ErrorInfo(reason="DATABASE_UNAVAILABLE", domain=ERROR_DOMAIN)))
    status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay={"seconds": UNAVAILABLE_RETRY_SECONDS})))
    await context.abort(
        grpc.StatusCode.UNAVAILABLE, message,
        trailing_metadata=(("retry-after", str(UNAVAILABLE_RETRY_SECONDS)),
                           ("grpc-status-details-bin", status.SerializeToString())),
    )
    raise AssertionError("unreachable")  # context.abort raises
