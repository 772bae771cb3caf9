"""User tokens (`user_id` claim), album abilities and X-token refresh."""

from __future__ import annotations

import time

import jwt
import pytest
from pixport.domain.auth import (
    KNOWN_SCOPES,
    REFRESH_BEFORE_SECONDS,
    WRITE_SCOPE,
    Authenticator,
    ClientRecord,
    Principal,
    TokenStyle,
    UserRecord,
    derive_client_secret,
    derive_user_token_secret,
    mint_token,
)
from pixport.domain.errors import PermissionDenied, Unauthenticated

SERVER_KEY = b"unit-test-server-key-for-user-tokens"
USER = UserRecord(id="user-1", organization_id="org-1", organization_name="acme")
CLIENT = ClientRecord(id="client-1", organization_id="org-1", organization_name="acme", scopes=KNOWN_SCOPES,
                      secret_generation=1, previous_generation_until=None)
ALBUM_GRANT = {"imported_album": {"Access": {"image_upload": True}}}


class Directory:
    async def get_api_client(self, client_id: str) -> ClientRecord | None:
        return CLIENT if client_id == CLIENT.id else None

    async def get_user(self, user_id: str) -> UserRecord | None:
        return USER if user_id == USER.id else None


def authenticator() -> Authenticator:
    return Authenticator(Directory(), SERVER_KEY)


def user_token(**kwargs: object) -> str:
    return mint_token(derive_user_token_secret(SERVER_KEY, USER.organization_id), user_id=USER.id, **kwargs)  # type: ignore[arg-type]


async def test_a_user_token_has_its_users_rights_in_its_organisation() -> None:
    principal = await authenticator().authenticate(f'Token token="{user_token()}"')
    assert principal.user_id == USER.id and principal.client_id is None
    assert principal.organization_id == "org-1" and principal.scopes == frozenset(KNOWN_SCOPES)
    assert principal.may_upload_to("any album")


async def test_a_user_token_signed_with_a_client_secret_is_refused() -> None:
    forged = mint_token(derive_client_secret(SERVER_KEY, CLIENT.id, 1), user_id=USER.id)
    with pytest.raises(Unauthenticated, match="signature"):
        await authenticator().authenticate(f"Bearer {forged}")


async def test_an_unknown_user_is_refused() -> None:
    unknown = mint_token(derive_user_token_secret(SERVER_KEY, "org-1"), user_id="nobody")
    with pytest.raises(Unauthenticated, match="user"):
        await authenticator().authenticate(f"Bearer {unknown}")


async def test_user_secrets_differ_per_organisation() -> None:
    assert derive_user_token_secret(SERVER_KEY, "org-1") != derive_user_token_secret(SERVER_KEY, "org-2")
    other_org = mint_token(derive_user_token_secret(SERVER_KEY, "org-2"), user_id=USER.id)
    with pytest.raises(Unauthenticated):
        await authenticator().authenticate(f"Bearer {other_org}")


async def test_abilities_limit_uploads_to_the_albums_named() -> None:
    principal = await authenticator().authenticate(f'Token token="{user_token(abilities=ALBUM_GRANT)}"')
    assert principal.may_upload_to("imported_album")
    assert not principal.may_upload_to("another_album")
    principal.require_upload("imported_album")
    with pytest.raises(PermissionDenied, match="another_album"):
        principal.require_upload("another_album")


@pytest.mark.parametrize("abilities", [
    {"imported_album": {"Access": {"image_upload": False}}},
    {"imported_album": {"Access": {}}},
    {"imported_album": {"Access": "yes"}},
    {"imported_album": True},
    {},
])
def test_anything_but_an_explicit_grant_refuses_the_album(abilities: dict[str, object]) -> None:
    principal = Principal(organization_id="o", client_id="c", scopes=frozenset(KNOWN_SCOPES),
                          style=TokenStyle.TOKEN, token="t", abilities=abilities)
    assert not principal.may_upload_to("imported_album")


def test_without_abilities_uploads_need_the_write_scope() -> None:
    reader = Principal(organization_id="o", client_id="c", scopes=frozenset({"public-api:read"}),
                       style=TokenStyle.BEARER, token="t")
    assert not reader.may_upload_to("any")
    writer = Principal(organization_id="o", client_id="c", scopes=frozenset({WRITE_SCOPE}),
                       style=TokenStyle.BEARER, token="t")
    assert writer.may_upload_to("any")


async def test_x_token_is_the_token_until_it_nears_expiry() -> None:
    fresh = user_token(ttl_seconds=3600)
    assert (await authenticator().authenticate(f"Bearer {fresh}")).response_token == fresh
    ending = user_token(ttl_seconds=REFRESH_BEFORE_SECONDS - 10, abilities=ALBUM_GRANT)
    refreshed = (await authenticator().authenticate(f"Bearer {ending}")).response_token
    assert refreshed != ending
    claims = jwt.decode(refreshed, derive_user_token_secret(SERVER_KEY, "org-1"), algorithms=["HS256"])
    assert claims["user_id"] == USER.id and claims["abilities"] == ALBUM_GRANT
    assert claims["exp"] - time.time() > REFRESH_BEFORE_SECONDS


async def test_a_token_without_issuer_or_user_is_refused() -> None:
    anonymous = jwt.encode({"iat": int(time.time()), "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="neither"):
        await authenticator().authenticate(f"Bearer {anonymous}")


def test_an_album_scoped_token_gets_nothing_organisation_wide() -> None:
    principal = Principal(organization_id="o", client_id="c", scopes=frozenset(KNOWN_SCOPES),
                          style=TokenStyle.TOKEN, token="t", abilities=ALBUM_GRANT)
    for scope in KNOWN_SCOPES:
        with pytest.raises(PermissionDenied, match="limited to the albums"):
            principal.require(scope)
    principal.require_album("imported_album")
    with pytest.raises(PermissionDenied):
        principal.require_album("another_album")


async def test_refreshing_stops_a_week_after_the_first_token() -> None:
    month_old = int(time.time()) - 30 * 24 * 3600
    ending = mint_token(derive_user_token_secret(SERVER_KEY, "org-1"), user_id=USER.id, ttl_seconds=60)
    claims = jwt.decode(ending, options={"verify_signature": False})
    old_session = jwt.encode({**claims, "orig_iat": month_old}, derive_user_token_secret(SERVER_KEY, "org-1"),
                             algorithm="HS256")
    assert (await authenticator().authenticate(f"Bearer {old_session}")).response_token == old_session
