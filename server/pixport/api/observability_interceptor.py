"""Every RPC measured and logged under its request id, and streams closed cleanly on shutdown.

- `x-request-id` (set by Envoy, or by a gRPC caller) goes into the logs' request-id contextvar,
  so every log line written while serving the call carries it.
- pixport_rpc_requests_total{method,code} and pixport_rpc_duration_seconds{method}.
- When the server starts draining, a server stream ends with UNAVAILABLE naming the last
  sequence sent, so the caller resumes with `after_sequence` and misses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pixport.observability import logs
from pixport.observability.metrics import RPC_DURATION, RPC_REQUESTS

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
_MAX_REQUEST_ID = 128


def _request_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == "x-request-id" and isinstance(value, str) and value:
            return "".join(ch for ch in value[:_MAX_REQUEST_ID] if ch.isprintable())
    return uuid.uuid4().hex


def _code_name(context: Context, error: BaseException | None) -> str:
    code: Any = None
    with contextlib.suppress(Exception):
        code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio may keep the raw cygrpc value
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, draining: asyncio.Event) -> None:
        self._draining = draining

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        method = handler_call_details.method
        request_id = _request_id(handler_call_details)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, request_id, handler.unary_unary),
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, request_id, handler.unary_stream),
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer,
            )
        return handler

    def _finish(self, method: str, context: Context, started: float, error: BaseException | None) -> None:
        code = _code_name(context, error)
        elapsed = time.perf_counter() - started
        RPC_REQUESTS.labels(method=method, code=code).inc()
        RPC_DURATION.labels(method=method).observe(elapsed)
        log.info("%s %s", method, code, extra={"method": method, "code": code,
                                               "duration_ms": round(elapsed * 1000, 1)})

    def _unary(self, method: str, request_id: str, behavior: Any) -> Any:
        async def unary(request: Any, context: Context) -> Any:
            token = logs.request_id.set(request_id)
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._finish(method, context, started, error)
                logs.request_id.reset(token)

        return unary

    def _stream(self, method: str, request_id: str, behavior: Any) -> Any:
        draining = self._draining

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            token = logs.request_id.set(request_id)
            started = time.perf_counter()
            error: BaseException | None = None
            last_sequence: int | None = None
            responses = behavior(request, context).__aiter__()
            stop = asyncio.ensure_future(draining.wait())
            try:
                while True:
                    following = asyncio.ensure_future(responses.__anext__())
                    await asyncio.wait({following, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not following.done():
                        following.cancel()
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                            await following
                        resume = f"; resume with after_sequence={last_sequence}" if last_sequence else ""
                        await context.abort(grpc.StatusCode.UNAVAILABLE, f"server shutting down{resume}")
                    try:
                        response = following.result()
                    except StopAsyncIteration:
                        return
                    last_sequence = getattr(response, "sequence", None) or last_sequence
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                stop.cancel()
                with contextlib.suppress(Exception):
                    await responses.aclose()
                self._finish(method, context, started, error)
                with contextlib.suppress(ValueError):  # finalised in another context
                    logs.request_id.reset(token)

        return stream
