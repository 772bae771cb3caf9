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
REFRESH_BEFORE_SECONDS = 300
MAX_SESSION_SECONDS = 7 * 24 * 3600
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


@dataclass(frozen=True)
class UserRecord:
    id: str
    organization_id: str
    organization_name: str


class ClientDirectory(Protocol):
    async def get_api_client(self, client_id: str) -> ClientRecord | None: ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...


@dataclass(frozen=True)
class Principal:
    organization_id: str
    client_id: str | None
    scopes: frozenset[str]
    style: TokenStyle
    token: str
    user_id: str | None = None
    abilities: Mapping[str, Any] | None = field(default=None)
    # What the `X-token` response header carries: the token, or a fresh one when it nears expiry.
    response_token: str = ""

    def require(self, scope: str) -> None:
        """Organisation-wide operations. A token carrying `abilities` (the kind handed to a browser
        for one album) is limited to its albums and gets none of them."""
        if self.abilities is not None:
            raise PermissionDenied("this token is limited to the albums named in its abilities")
        # The seeds document status reads under the write scope, so write implies read.
        granted = scope in self.scopes or (scope == READ_SCOPE and WRITE_SCOPE in self.scopes)
        if not granted:
            raise PermissionDenied(f"this token lacks the {scope!r} scope")

    def may_upload_to(self, album_id: str) -> bool:
        """A token with `abilities` uploads only into the albums it names with image_upload true."""
        if self.abilities is None:
            return WRITE_SCOPE in self.scopes
        grant = self.abilities.get(album_id)
        access = grant.get("Access") if isinstance(grant, Mapping) else None
        return isinstance(access, Mapping) and access.get("image_upload") is True

    def require_upload(self, album_id: str) -> None:
        if self.abilities is None:
            self.require(WRITE_SCOPE)
        elif not self.may_upload_to(album_id):
            raise PermissionDenied(f"this token may not upload into album {album_id[:128]!r}")

    def require_album(self, album_id: str) -> None:
        """Reading an album (its images, its imports): the albums a token's abilities name, or any
        album with the read scope."""
        if self.abilities is None:
            self.require(READ_SCOPE)
        elif album_id not in self.abilities:
            raise PermissionDenied(f"this token may not read album {album_id[:128]!r}")


def derive_client_secret(server_key: bytes, client_id: str, generation: int) -> str:
    """A client's signing secret. Derived, not stored: the database never holds a usable secret."""
    digest = hmac.new(server_key, f"api-client:{client_id}:{generation}".encode(), hashlib.sha256).digest()
    return "pxs_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def derive_user_token_secret(server_key: bytes, organization_id: str) -> str:
    """The organisation's secret for user tokens (`user_id` claim). Derived, not stored."""
    digest = hmac.new(server_key, f"user-tokens:{organization_id}".encode(), hashlib.sha256).digest()
    return "pxu_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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
    secret: str, *, issuer: str | None = None, user_id: str | None = None, scopes: Iterable[str] = (),
    ttl_seconds: int = 3600, abilities: Mapping[str, Any] | None = None, now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iat": issued, "exp": issued + ttl_seconds}
    if issuer:
        claims["iss"] = issuer
    if user_id:
        claims["user_id"] = user_id
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
        issuer, user_id = unverified.get("iss"), unverified.get("user_id")
        if isinstance(issuer, str) and issuer:
            return await self._client_principal(style, token, issuer)
        if isinstance(user_id, str) and user_id:
            return await self._user_principal(style, token, user_id)
        raise Unauthenticated("token names neither an API client (iss) nor a user (user_id)")

    async def _client_principal(self, style: TokenStyle, token: str, issuer: str) -> Principal:
        client = await self._directory.get_api_client(issuer) if len(issuer) <= 64 else None
        if client is None:
            raise Unauthenticated("token issuer is not a known API client")
        generations = [client.secret_generation]
        grace = client.previous_generation_until
        if grace is not None and grace.timestamp() > time.time():
            generations.append(client.secret_generation - 1)
        secrets = [derive_client_secret(self._server_key, client.id, g) for g in generations]
        claims, secret = self._verify(token, secrets, ("exp", "iat", "iss"))
        scopes = frozenset(str(claims.get("scope", "")).split()) & frozenset(client.scopes)
        if style is TokenStyle.TOKEN and "scope" not in claims:
            scopes = frozenset(client.scopes)  # seed-style tokens carry abilities, not scopes
        return Principal(
            organization_id=client.organization_id, client_id=client.id, scopes=scopes, style=style,
            token=token, abilities=_abilities(claims), response_token=self._refreshed(token, claims, secret),
        )

    async def _user_principal(self, style: TokenStyle, token: str, user_id: str) -> Principal:
        user = await self._directory.get_user(user_id) if len(user_id) <= 64 else None
        if user is None:
            raise Unauthenticated("token user is not known")
        secret = derive_user_token_secret(self._server_key, user.organization_id)
        claims, _ = self._verify(token, [secret], ("exp", "iat", "user_id"))
        # A user has its user's rights in its organisation; `abilities` narrow album uploads.
        return Principal(
            organization_id=user.organization_id, client_id=None, scopes=frozenset(KNOWN_SCOPES), style=style,
            token=token, user_id=user.id, abilities=_abilities(claims),
            response_token=self._refreshed(token, claims, secret),
        )

    def _refreshed(self, token: str, claims: dict[str, Any], secret: str) -> str:
        """The same claims with a new expiry when fewer than REFRESH_BEFORE_SECONDS remain."""
        expires, issued = int(claims["exp"]), int(claims["iat"])
        now = time.time()
        if expires - now > REFRESH_BEFORE_SECONDS:
            return token
        # Refreshing is bounded: a token first minted more than MAX_SESSION_SECONDS ago just expires.
        first_issued = claims.get("orig_iat", issued)
        if not isinstance(first_issued, int) or now - first_issued > MAX_SESSION_SECONDS:
            return token
        lifetime = max(expires - issued, REFRESH_BEFORE_SECONDS * 2)
        fresh = {**claims, "iat": int(now), "exp": int(now) + lifetime, "orig_iat": first_issued}
        return jwt.encode(fresh, secret, algorithm=ALGORITHM)

    def _verify(
        self, token: str, secrets: list[str], required: tuple[str, ...]
    ) -> tuple[dict[str, Any], str]:
        for secret in secrets:
            try:
                claims = jwt.decode(
                    token, secret, algorithms=[ALGORITHM], leeway=LEEWAY_SECONDS,
                    options={"require": list(required)},
                )
                return claims, secret
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("token expired") from None
            except jwt.ImmatureSignatureError:
                raise Unauthenticated("token not yet valid (iat/nbf in the future)") from None
            except jwt.MissingRequiredClaimError as error:
                raise Unauthenticated(f"token lacks the required {error.claim!r} claim") from None
            except jwt.PyJWTError:
                raise Unauthenticated("invalid token") from None
        raise Unauthenticated("token signature does not verify")


def _abilities(claims: Mapping[str, Any]) -> Mapping[str, Any] | None:
    abilities = claims.get("abilities")
    return abilities if isinstance(abilities, Mapping) else None
