"""`pixport check --grpc ADDR`: ask an API process's grpc.health.v1 whether it is serving."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pixport.runtime.checks import TIMEOUT_SECONDS


async def grpc_problems(address: str) -> list[str]:
    """An API process: grpc.health.v1 says SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as error:
            return [f"gRPC {address}: {error.code().name}: {error.details()}"]
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return [f"gRPC {address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"]
    return []
