"""Who is calling: Authorization header → verified principal. HS256 JWTs only (PyJWT)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import jwt

from pixport.domain.errors import PermissionDenied, Unauthenticated

READ_SCOPE = "public-api:read"
WRITE_SCOPE = "public-api:write"
KNOWN_SCOPES = (READ_SCOPE, WRITE_SCOPE)
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
_TOKEN_STYLE = re.compile(r'^Token\s+token="?([^"\s]+)"?$', re.IGNORECASE)
_BEARER_STYLE = re.compile(r"^Bearer\s+(\S+)$", re.IGNORECASE)


class TokenStyle(StrEnum):
    BEARER = "bearer"  # seeds 002/004: scopes
    TOKEN = "token"  # noqa: S105 - a header style, not a secret; seeds 000/001/003: Token token="...", abilities


@dataclass(frozen=True)
class ClientRecord:
    id: str
    organization_id: str
    organization_name: str
    scopes: tuple[str, ...]
    secret_generation: int
    previous_generation_until: datetime | None


class ClientDirectory(Protocol):
    async def get_api_client(self, client_id: str) -> ClientRecord | None: ...


@dataclass(frozen=True)
class Principal:
    organization_id: str
    client_id: str | None
    scopes: frozenset[str]
    style: TokenStyle
    token: str
    user_id: str | None = None
    abilities: Mapping[str, Any] | None = field(default=None)

    def require(self, scope: str) -> None:
        # The seeds document status reads under the write scope, so write implies read.
        granted = scope in self.scopes or (scope == READ_SCOPE and WRITE_SCOPE in self.scopes)
        if not granted:
            raise PermissionDenied(f"this token lacks the {scope!r} scope")


def derive_client_secret(server_key: bytes, client_id: str, generation: int) -> str:
    """A client's signing secret. Derived, not stored: the database never holds a usable secret."""
    digest = hmac.new(server_key, f"api-client:{client_id}:{generation}".encode(), hashlib.sha256).digest()
    return "pxs_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def parse_authorization(header: str | None) -> tuple[TokenStyle, str]:
    if not header or not header.strip():
        raise Unauthenticated("missing Authorization header (expected `Bearer <token>` or `Token token=\"<token>\"`)")
    header = header.strip()
    if match := _BEARER_STYLE.match(header):
        return TokenStyle.BEARER, match.group(1)
    if match := _TOKEN_STYLE.match(header):
        return TokenStyle.TOKEN, match.group(1)
    raise Unauthenticated("malformed Authorization header (expected `Bearer <token>` or `Token token=\"<token>\"`)")


def mint_token(
    secret: str, *, issuer: str, scopes: Iterable[str] = (), ttl_seconds: int = 3600,
    abilities: Mapping[str, Any] | None = None, now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iss": issuer, "iat": issued, "exp": issued + ttl_seconds}
    scope_list = list(scopes)
    if scope_list:
        claims["scope"] = " ".join(scope_list)
    if abilities:
        claims["abilities"] = dict(abilities)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class Authenticator:
    def __init__(self, directory: ClientDirectory, server_key: bytes) -> None:
        self._directory = directory
        self._server_key = server_key

    async def authenticate(self, header: str | None) -> Principal:
        style, token = parse_authorization(header)
        try:
            unverified_header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token: not a JWT") from None
        if unverified_header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"token algorithm must be {ALGORITHM}")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Unauthenticated("token has no issuer (iss)")
        client = await self._directory.get_api_client(issuer) if len(issuer) <= 64 else None
        if client is None:
            raise Unauthenticated("token issuer is not a known API client")
        claims = self._verify(token, client)
        scopes = frozenset(str(claims.get("scope", "")).split()) & frozenset(client.scopes)
        if style is TokenStyle.TOKEN and not claims.get("scope"):
            scopes = frozenset(client.scopes)
        abilities = claims.get("abilities")
        return Principal(
            organization_id=client.organization_id, client_id=client.id, scopes=scopes, style=style,
            token=token, abilities=abilities if isinstance(abilities, Mapping) else None,
        )

    def _verify(self, token: str, client: ClientRecord) -> dict[str, Any]:
        generations = [client.secret_generation]
        grace = client.previous_generation_until
        if grace is not None and grace.timestamp() > time.time():
            generations.append(client.secret_generation - 1)
        last_error: jwt.PyJWTError | None = None
        for generation in generations:
            secret = derive_client_secret(self._server_key, client.id, generation)
            try:
                return jwt.decode(
                    token, secret, algorithms=[ALGORITHM], leeway=LEEWAY_SECONDS,
                    options={"require": ["exp", "iat", "iss"]},
                )
            except jwt.InvalidSignatureError as error:
                last_error = error
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("token expired") from None
            except jwt.ImmatureSignatureError:
                raise Unauthenticated("token not yet valid (iat/nbf in the future)") from None
            except jwt.MissingRequiredClaimError as error:
                raise Unauthenticated(f"token lacks the required {error.claim!r} claim") from None
            except jwt.PyJWTError:
                raise Unauthenticated("invalid token") from None
        assert last_error is not None
        raise Unauthenticated("token signature does not verify")
