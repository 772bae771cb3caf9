"""pixport.v1.ReadinessService: the edge's `/ready`, true only when the database and the blob store answer."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import grpc

from pixport.api.errors import UNAVAILABLE_RETRY_SECONDS
from pixport.blobs import BlobStore, BlobStoreUnavailable
from pixport.store.db import is_connection_error, ping
from pixport.v1 import readiness_service_pb2, readiness_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class ReadinessServicer(readiness_service_pb2_grpc.ReadinessServiceServicer):
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._pool = pool
        self._blobs = blobs

    async def GetReadiness(
        self, request: readiness_service_pb2.GetReadinessRequest, context: Context
    ) -> readiness_service_pb2.Readiness:
        started = time.perf_counter()
        try:
            await ping(self._pool)
        except Exception as error:
            if not is_connection_error(error) and not isinstance(error, asyncpg.PostgresError):
                raise
            await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable",
                                trailing_metadata=(("retry-after", str(UNAVAILABLE_RETRY_SECONDS)),))
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        try:
            await self._blobs.check()
        except BlobStoreUnavailable as error:
            # Says which part is missing (bucket, credentials, endpoint) so an operator can fix it.
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"blob store unavailable: {error.reason}")
        return readiness_service_pb2.Readiness(ready=True, database_latency_ms=latency_ms)
