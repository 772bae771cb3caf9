"""API clients looked up by organisation and scopes (what `pixport console-url` reuses)."""

from __future__ import annotations

import itertools

import asyncpg
from pixport.store.organizations import OrganizationStore

_names = itertools.count(1)
READ, WRITE = "public-api:read", "public-api:write"


async def test_find_api_client_takes_the_oldest_with_every_scope(pool: asyncpg.Pool) -> None:
    store = OrganizationStore(pool)
    name = f"console-org-{next(_names)}"
    await store.create_api_client(name, (READ,))
    first = await store.create_api_client(name, (READ, WRITE))
    await store.create_api_client(name, (WRITE, READ))
    found = await store.find_api_client(name, (READ, WRITE))
    assert found is not None and found.id == first.id and found.organization_name == name
    assert set(found.scopes) == {READ, WRITE}


async def test_find_api_client_is_none_without_a_match(pool: asyncpg.Pool) -> None:
    store = OrganizationStore(pool)
    name = f"console-org-{next(_names)}"
    await store.create_api_client(name, (READ,))
    assert await store.find_api_client(name, (READ, WRITE)) is None
    assert await store.find_api_client(f"{name}-missing", (READ,)) is None
