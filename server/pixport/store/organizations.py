"""Organisations and API clients."""

from __future__ import annotations

import asyncpg

from pixport.domain.auth import ClientRecord, UserRecord
from pixport.domain.ids import looks_like_id, new_uuid
from pixport.store.queries import QUERIES


def _client_record(row: asyncpg.Record) -> ClientRecord:
    return ClientRecord(
        id=row["id"], organization_id=row["organization_id"], organization_name=row["organization_name"],
        scopes=tuple(row["scopes"]), secret_generation=row["secret_generation"],
        previous_generation_until=row["previous_generation_until"],
    )


class OrganizationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def upsert_organization(self, name: str) -> str:
        row = await self._pool.fetchrow(QUERIES["upsert_organization"], new_uuid(), name)
        assert row is not None
        return str(row["id"])

    async def organization_id(self, name: str) -> str | None:
        row = await self._pool.fetchrow(QUERIES["get_organization_by_name"], name)
        return str(row["id"]) if row else None

    async def create_api_client(self, organization_name: str, scopes: tuple[str, ...]) -> ClientRecord:
        async with self._pool.acquire() as connection, connection.transaction():
            org = await connection.fetchrow(QUERIES["upsert_organization"], new_uuid(), organization_name)
            assert org is not None  # an upsert always returns the row
            row = await connection.fetchrow(QUERIES["insert_api_client"], new_uuid(), org["id"], list(scopes))
        assert row is not None
        return ClientRecord(
            id=row["id"], organization_id=row["organization_id"], organization_name=organization_name,
            scopes=tuple(row["scopes"]), secret_generation=row["secret_generation"],
            previous_generation_until=row["previous_generation_until"],
        )

    async def create_user(self, organization_name: str) -> UserRecord:
        async with self._pool.acquire() as connection, connection.transaction():
            org = await connection.fetchrow(QUERIES["upsert_organization"], new_uuid(), organization_name)
            assert org is not None  # an upsert always returns the row
            user_id = await connection.fetchval(QUERIES["insert_user"], new_uuid(), org["id"])
        return UserRecord(id=user_id, organization_id=org["id"], organization_name=organization_name)

    async def get_user(self, user_id: str) -> UserRecord | None:
        if not looks_like_id(user_id):
            return None
        row = await self._pool.fetchrow(QUERIES["get_user"], user_id)
        return UserRecord(row["id"], row["organization_id"], row["organization_name"]) if row else None

    async def set_quota(self, organization_name: str, images_per_day: int | None) -> bool:
        return await self._pool.fetchval(QUERIES["set_quota"], organization_name, images_per_day) is not None

    async def rotate_client(self, client_id: str, grace_seconds: float) -> ClientRecord | None:
        if not looks_like_id(client_id):
            return None
        row = await self._pool.fetchrow(QUERIES["rotate_client"], client_id, grace_seconds)
        return None if row is None else await self.get_api_client(client_id)

    async def get_api_client(self, client_id: str) -> ClientRecord | None:
        if not looks_like_id(client_id):
            return None
        row = await self._pool.fetchrow(QUERIES["get_api_client"], client_id)
        return None if row is None else _client_record(row)

    async def find_api_client(self, organization_name: str, scopes: tuple[str, ...]) -> ClientRecord | None:
        """The organisation's oldest client allowed every scope given, if any."""
        row = await self._pool.fetchrow(QUERIES["find_api_client_with_scopes"], organization_name, list(scopes))
        return None if row is None else _client_record(row)
