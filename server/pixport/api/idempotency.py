"""The `Idempotency-Key` request header (gRPC metadata `idempotency-key`) as the create
request's request id, when the body names none."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc

from pixport.domain.batch import BatchRequest
from pixport.domain.errors import FieldViolation, InvalidArgument

HEADER = "idempotency-key"


def idempotency_key(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == HEADER and isinstance(value, str):
            return value.strip()
    return ""


def with_idempotency_key(request: BatchRequest, context: grpc.aio.ServicerContext[Any, Any]) -> BatchRequest:
    """`request` with the header's key as its request id. A body requestId that disagrees with
    the header is a 400: which one was meant cannot be guessed."""
    key = idempotency_key(context)
    if not key or key == request.request_id:
        return request
    if request.request_id:
        raise InvalidArgument([FieldViolation("Idempotency-Key", "must equal requestId when both are given")])
    return dataclasses.replace(request, request_id=key)
