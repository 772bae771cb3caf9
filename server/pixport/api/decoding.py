"""Requests that cannot be decoded (bad UTF-8 in a string, corrupt wire data, nesting past protobuf's
depth limit) answer INVALID_ARGUMENT, not grpc's default 'Unexpected <class DecodeError>'."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError


@dataclass(frozen=True)
class Undecodable:
    reason: str


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw) if deserializer is not None else raw
        except (DecodeError, RecursionError, UnicodeDecodeError, ValueError) as error:
            return Undecodable(str(error) or type(error).__name__)

    return deserialize


def _message(request: Undecodable) -> str:
    return (
        "request could not be decoded (invalid UTF-8, malformed data, or nesting deeper than protobuf allows): "
        f"{request.reason[:200]}"
    )


class DecodeErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    # Handlers are typed loosely: grpc's stubs describe the synchronous API.
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary

            async def unary_behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                if isinstance(request, Undecodable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _message(request))
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_behavior, request_deserializer=_safe(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream: Any = handler.unary_stream

            async def stream_behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                if isinstance(request, Undecodable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _message(request))
                async for response in stream(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                stream_behavior, request_deserializer=_safe(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler
