"""Authorization header → verified principal: header parsing, secret derivation, JWT checks, scopes, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pixport.domain.auth import (
    LEEWAY_SECONDS,
    READ_SCOPE,
    WRITE_SCOPE,
    Authenticator,
    ClientRecord,
    Principal,
    TokenStyle,
    derive_client_secret,
    mint_token,
    parse_authorization,
)
from pixport.domain.errors import PermissionDenied, Unauthenticated

SERVER_KEY = b"unit-test-server-key-0123456789abcdef"
CLIENT_ID = "client-1"
ORG_ID = "org-1"


class Directory:
    """An in-memory ClientDirectory that remembers which ids it was asked for."""

    def __init__(self, *clients: ClientRecord) -> None:
        self.clients = {client.id: client for client in clients}
        self.asked: list[str] = []

    async def get_api_client(self, client_id: str) -> ClientRecord | None:
        self.asked.append(client_id)
        return self.clients.get(client_id)

    async def get_user(self, user_id: str) -> None:
        self.asked.append(f"user {user_id}")
        return None


def client(
    client_id: str = CLIENT_ID,
    *,
    scopes: tuple[str, ...] = (READ_SCOPE, WRITE_SCOPE),
    generation: int = 1,
    previous_until: datetime | None = None,
) -> ClientRecord:
    return ClientRecord(
        id=client_id, organization_id=ORG_ID, organization_name="acme", scopes=scopes,
        secret_generation=generation, previous_generation_until=previous_until,
    )


def secret(client_id: str = CLIENT_ID, generation: int = 1) -> str:
    return derive_client_secret(SERVER_KEY, client_id, generation)


def token(
    *, client_id: str = CLIENT_ID, generation: int = 1, scopes: tuple[str, ...] = (READ_SCOPE, WRITE_SCOPE),
    ttl: int = 600, now: float | None = None, abilities: dict[str, Any] | None = None,
) -> str:
    return mint_token(
        secret(client_id, generation), issuer=client_id, scopes=scopes, ttl_seconds=ttl, now=now,
        abilities=abilities,
    )


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def hand_signed(claims: dict[str, Any], key: str) -> str:
    """An HS256 JWT built by hand, so claims PyJWT's encoder would refuse can be sent."""
    signing_input = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims)
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


async def authenticate(header: str | None, *clients: ClientRecord) -> Principal:
    directory = Directory(*(clients or (client(),)))
    return await Authenticator(directory, SERVER_KEY).authenticate(header)


async def refused(header: str | None, *clients: ClientRecord) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await authenticate(header, *clients)
    return caught.value.message


# --- parse_authorization -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "style", "value"),
    [
        ("Bearer abc.def.ghi", TokenStyle.BEARER, "abc.def.ghi"),
        ("bearer abc", TokenStyle.BEARER, "abc"),
        ("BEARER abc", TokenStyle.BEARER, "abc"),
        ("Bearer    abc", TokenStyle.BEARER, "abc"),
        ("  Bearer abc  ", TokenStyle.BEARER, "abc"),
        ('Token token="abc.def"', TokenStyle.TOKEN, "abc.def"),
        ("Token token=abc.def", TokenStyle.TOKEN, "abc.def"),
        ('token token="abc"', TokenStyle.TOKEN, "abc"),
        ('TOKEN TOKEN="abc"', TokenStyle.TOKEN, "abc"),
        ('Token   token="abc"', TokenStyle.TOKEN, "abc"),
    ],
)
def test_parse_authorization_accepts_both_styles(header: str, style: TokenStyle, value: str) -> None:
    assert parse_authorization(header) == (style, value)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated, match="missing Authorization header"):
        parse_authorization(header)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearerabc",
        "Basic dXNlcjpwYXNz",
        "abc.def.ghi",
        "Token abc",
        "Token token=",
        'Token token=""',
        'Token token="a b"',
        'Token secret="abc"',
        "Token token=abc extra",
    ],
)
def test_malformed_headers_are_unauthenticated(header: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed Authorization header"):
        parse_authorization(header)


# --- derive_client_secret ----------------------------------------------------------------------


def test_derived_secrets_are_deterministic() -> None:
    assert derive_client_secret(SERVER_KEY, "c", 1) == derive_client_secret(SERVER_KEY, "c", 1)


def test_derived_secrets_differ_per_client_generation_and_server_key() -> None:
    secrets = {
        derive_client_secret(SERVER_KEY, "c", 1),
        derive_client_secret(SERVER_KEY, "c", 2),
        derive_client_secret(SERVER_KEY, "d", 1),
        derive_client_secret(b"another-server-key", "c", 1),
    }
    assert len(secrets) == 4


def test_derived_secret_shape() -> None:
    value = derive_client_secret(SERVER_KEY, "c", 1)
    assert value.startswith("pxs_")
    body = value.removeprefix("pxs_")
    assert len(body) == 43  # 32 bytes, url-safe base64 without padding
    assert "=" not in body
    assert base64.urlsafe_b64decode(body + "=") != b""


# --- Authenticator: valid tokens ----------------------------------------------------------------


async def test_a_valid_bearer_token_gives_the_clients_principal() -> None:
    value = token(scopes=(WRITE_SCOPE,))
    principal = await authenticate(f"Bearer {value}")
    assert principal.organization_id == ORG_ID
    assert principal.client_id == CLIENT_ID
    assert principal.scopes == frozenset({WRITE_SCOPE})
    assert principal.style is TokenStyle.BEARER
    assert principal.token == value


async def test_a_valid_token_style_header_is_accepted() -> None:
    principal = await authenticate(f'Token token="{token(scopes=(READ_SCOPE,))}"')
    assert principal.style is TokenStyle.TOKEN
    assert principal.scopes == frozenset({READ_SCOPE})


async def test_abilities_are_carried_through() -> None:
    principal = await authenticate(f"Bearer {token(abilities={'import': True})}")
    assert principal.abilities == {"import": True}


# --- Authenticator: refusals ---------------------------------------------------------------------


async def test_a_token_signed_with_another_key_is_refused() -> None:
    forged = mint_token("pxs_" + "x" * 43, issuer=CLIENT_ID, scopes=(WRITE_SCOPE,))
    assert await refused(f"Bearer {forged}") == "token signature does not verify"


async def test_a_token_signed_for_another_client_is_refused() -> None:
    other = mint_token(secret("client-2"), issuer=CLIENT_ID, scopes=(WRITE_SCOPE,))
    assert await refused(f"Bearer {other}", client(), client("client-2")) == "token signature does not verify"


async def test_alg_none_is_refused() -> None:
    now = int(time.time())
    unsigned = jwt.encode({"iss": CLIENT_ID, "iat": now, "exp": now + 600}, None, algorithm="none")
    assert await refused(f"Bearer {unsigned}") == "token algorithm must be HS256"


async def test_hs512_signed_with_the_right_secret_is_refused() -> None:
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "iat": now, "exp": now + 600, "scope": WRITE_SCOPE}
    value = jwt.encode(claims, secret() * 2, algorithm="HS512")
    assert await refused(f"Bearer {value}") == "token algorithm must be HS256"


async def test_an_rs256_header_is_refused() -> None:
    now = int(time.time())
    value = ".".join([
        b64({"alg": "RS256", "typ": "JWT"}), b64({"iss": CLIENT_ID, "iat": now, "exp": now + 600}), "c2ln",
    ])
    assert await refused(f"Bearer {value}") == "token algorithm must be HS256"


@pytest.mark.parametrize("value", ["abc", "a.b.c", "not-a-jwt.at-all", b64({"alg": "HS256"}) + ".e30"])
async def test_garbage_tokens_are_refused(value: str) -> None:
    assert await refused(f"Bearer {value}") == "malformed token: not a JWT"


async def test_expired_beyond_the_leeway_is_refused() -> None:
    now = time.time()
    value = token(now=now - 3600, ttl=3600 - LEEWAY_SECONDS - 15)  # expired 45 s ago
    assert await refused(f"Bearer {value}") == "token expired"


async def test_expired_within_the_leeway_is_accepted() -> None:
    now = time.time()
    value = token(now=now - 3600, ttl=3600 - LEEWAY_SECONDS + 15)  # expired 15 s ago
    assert (await authenticate(f"Bearer {value}")).client_id == CLIENT_ID


async def test_iat_in_the_future_beyond_the_leeway_is_refused() -> None:
    value = token(now=time.time() + 120)
    assert await refused(f"Bearer {value}") == "token not yet valid (iat/nbf in the future)"


async def test_iat_slightly_in_the_future_is_accepted() -> None:
    value = token(now=time.time() + 10)  # clock skew within the leeway
    assert (await authenticate(f"Bearer {value}")).client_id == CLIENT_ID


def test_hand_signed_tokens_are_real_tokens() -> None:
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "iat": now, "exp": now + 600}
    assert jwt.decode(hand_signed(claims, secret()), secret(), algorithms=["HS256"]) == claims


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "soon"},
        {"iat": "yesterday"},
        {"nbf": "x"},
        {"exp": None},
    ],
)
async def test_malformed_time_claims_are_refused(claims: dict[str, Any]) -> None:
    now = int(time.time())
    value = hand_signed({"iss": CLIENT_ID, "iat": now, "exp": now + 600, **claims}, secret())
    with pytest.raises(Unauthenticated):
        await authenticate(f"Bearer {value}")


@pytest.mark.parametrize("claim", ["exp", "iat"])
async def test_missing_required_claims_are_refused(claim: str) -> None:
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "iat": now, "exp": now + 600}
    del claims[claim]
    value = jwt.encode(claims, secret(), algorithm="HS256")
    assert await refused(f"Bearer {value}") == f"token lacks the required {claim!r} claim"


@pytest.mark.parametrize("issuer", [None, "", 42])
async def test_a_token_without_a_string_issuer_is_refused(issuer: object) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {"iat": now, "exp": now + 600, "scope": WRITE_SCOPE}
    if issuer is not None:
        claims["iss"] = issuer
    value = hand_signed(claims, secret())
    with pytest.raises(Unauthenticated, match=r"\(iss\)"):
        await authenticate(f"Bearer {value}")


async def test_an_unknown_issuer_is_refused() -> None:
    value = mint_token(secret("nobody"), issuer="nobody", scopes=(WRITE_SCOPE,))
    assert await refused(f"Bearer {value}") == "token issuer is not a known API client"


async def test_an_issuer_longer_than_64_characters_is_not_looked_up() -> None:
    long_id = "c" * 65
    directory = Directory(client(long_id))
    value = mint_token(secret(long_id), issuer=long_id, scopes=(WRITE_SCOPE,))
    with pytest.raises(Unauthenticated, match="not a known API client"):
        await Authenticator(directory, SERVER_KEY).authenticate(f"Bearer {value}")
    assert directory.asked == []


async def test_an_issuer_of_exactly_64_characters_is_looked_up() -> None:
    exact_id = "c" * 64
    value = mint_token(secret(exact_id), issuer=exact_id, scopes=(WRITE_SCOPE,))
    assert (await authenticate(f"Bearer {value}", client(exact_id))).client_id == exact_id


# --- scopes --------------------------------------------------------------------------------------


async def test_scopes_are_the_intersection_with_the_clients_allowed_scopes() -> None:
    read_only = client(scopes=(READ_SCOPE,))
    principal = await authenticate(f"Bearer {token(scopes=(READ_SCOPE, WRITE_SCOPE, 'admin'))}", read_only)
    assert principal.scopes == frozenset({READ_SCOPE})
    with pytest.raises(PermissionDenied):
        principal.require(WRITE_SCOPE)


async def test_a_bearer_token_without_scope_claim_has_no_scopes() -> None:
    principal = await authenticate(f"Bearer {token(scopes=())}")
    assert principal.scopes == frozenset()


async def test_a_token_style_header_without_scope_claim_gets_the_clients_scopes() -> None:
    principal = await authenticate(f'Token token="{token(scopes=())}"', client(scopes=(READ_SCOPE,)))
    assert principal.scopes == frozenset({READ_SCOPE})


# --- secret rotation ----------------------------------------------------------------------------


async def test_the_previous_generation_works_during_the_grace_period() -> None:
    rotated = client(generation=2, previous_until=datetime.now(UTC) + timedelta(hours=1))
    assert (await authenticate(f"Bearer {token(generation=1)}", rotated)).client_id == CLIENT_ID
    assert (await authenticate(f"Bearer {token(generation=2)}", rotated)).client_id == CLIENT_ID
    assert await refused(f"Bearer {token(generation=0)}", rotated) == "token signature does not verify"
    assert await refused(f"Bearer {token(generation=3)}", rotated) == "token signature does not verify"


async def test_the_previous_generation_is_refused_after_the_grace_period() -> None:
    rotated = client(generation=2, previous_until=datetime.now(UTC) - timedelta(seconds=1))
    assert await refused(f"Bearer {token(generation=1)}", rotated) == "token signature does not verify"
    assert (await authenticate(f"Bearer {token(generation=2)}", rotated)).client_id == CLIENT_ID


async def test_the_previous_generation_is_refused_without_a_grace_period() -> None:
    rotated = client(generation=2, previous_until=None)
    assert await refused(f"Bearer {token(generation=1)}", rotated) == "token signature does not verify"


async def test_an_expired_token_of_the_previous_generation_says_expired() -> None:
    rotated = client(generation=2, previous_until=datetime.now(UTC) + timedelta(hours=1))
    value = token(generation=1, now=time.time() - 3600, ttl=60)
    assert await refused(f"Bearer {value}", rotated) == "token expired"


# --- Principal.require ------------------------------------------------------------------------


def principal(*scopes: str) -> Principal:
    return Principal(organization_id=ORG_ID, client_id=CLIENT_ID, scopes=frozenset(scopes),
                     style=TokenStyle.BEARER, token="t")


def test_write_implies_read() -> None:
    holder = principal(WRITE_SCOPE)
    holder.require(WRITE_SCOPE)
    holder.require(READ_SCOPE)


def test_read_does_not_imply_write() -> None:
    holder = principal(READ_SCOPE)
    holder.require(READ_SCOPE)
    with pytest.raises(PermissionDenied) as caught:
        holder.require(WRITE_SCOPE)
    assert caught.value.message == "this token lacks the 'public-api:write' scope"


@pytest.mark.parametrize("scope", [READ_SCOPE, WRITE_SCOPE, "admin"])
def test_no_scopes_grant_nothing(scope: str) -> None:
    with pytest.raises(PermissionDenied, match=scope):
        principal().require(scope)


def test_write_does_not_imply_unknown_scopes() -> None:
    with pytest.raises(PermissionDenied):
        principal(READ_SCOPE, WRITE_SCOPE).require("admin")
