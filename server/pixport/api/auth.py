"""Reading the caller from gRPC metadata (Envoy passes the HTTP Authorization header through)."""

from __future__ import annotations

import grpc

from pixport.domain.auth import Authenticator, Principal, TokenStyle


def metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:  # type: ignore[type-arg]
    for entry_key, value in context.invocation_metadata() or ():
        if entry_key == key:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


async def authenticate(context: grpc.aio.ServicerContext, authenticator: Authenticator) -> Principal:  # type: ignore[type-arg]
    principal = await authenticator.authenticate(metadata_value(context, "authorization"))
    if principal.style is TokenStyle.TOKEN:
        # Seed dialect: every Token-authenticated response carries X-token (refreshed near expiry).
        await context.send_initial_metadata((("x-token", principal.response_token),))
    return principal
