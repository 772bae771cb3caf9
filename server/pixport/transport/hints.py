"""What to say when the CLI meets a common mistake, instead of a bare gRPC status."""

from __future__ import annotations

import grpc

CLIENT_SECRET_PREFIX = "pxs_"  # noqa: S105  (a prefix to recognise, not a secret)


def token_problem(token: str | None) -> str | None:
    """Why `token` cannot be a bearer token, with what to do about it; None when it may be one."""
    if not token:
        return "a token is needed: --token or PIXPORT_TOKEN (mint one with `pixport token --client ID`)"
    if token.startswith(CLIENT_SECRET_PREFIX):
        return ("that is a client secret, not a token: mint one with `pixport token --client <client_id> "
                "--scope public-api:write --scope public-api:read`")
    if token.count(".") != 2:
        return "that does not look like a token (a JWT has three dot-separated parts): mint one with `pixport token`"
    return None


def rpc_problem(error: grpc.RpcError, server: str, listens: str) -> str:
    """A failed call in words: an unreachable server says where pixport listens."""
    code = error.code()
    if code is grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach pixport at {server}: is `make run` running? it listens on {listens}"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return f"token refused: {error.details()} (mint a fresh one with `pixport token`)"
    return f"{code.name}: {error.details()}"
