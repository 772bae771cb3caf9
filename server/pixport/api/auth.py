"""Reading the caller from gRPC metadata (Envoy passes the HTTP Authorization header through)."""

from __future__ import annotations

import grpc

from pixport.domain.auth import Authenticator, Principal


def metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:  # type: ignore[type-arg]
    for entry_key, value in context.invocation_metadata() or ():
        if entry_key == key:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


async def authenticate(context: grpc.aio.ServicerContext, authenticator: Authenticator) -> Principal:  # type: ignore[type-arg]
    return await authenticator.authenticate(metadata_value(context, "authorization"))
