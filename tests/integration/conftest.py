"""A real, private PostgreSQL for the store's integration tests: started once per session, migrated,
and stopped (SIGINT: fast shutdown) at the end. Tests share one database and stay apart by using
organisations of their own."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio
from integration_support import Database
from pixport.runtime.postgres import EmbeddedPostgres
from pixport.store.db import create_pool, migrate
from pixport.store.organizations import OrganizationStore

_orgs = itertools.count(1)


@pytest.fixture(scope="session")
def embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg")).running() as cluster:
        yield cluster


@pytest_asyncio.fixture(scope="session")
async def database(embedded_postgres: EmbeddedPostgres) -> Database:
    applied = await migrate(embedded_postgres.dsn)
    return Database(embedded_postgres.dsn, applied)


@pytest.fixture(scope="session")
def dsn(database: Database) -> str:
    return database.dsn


@pytest_asyncio.fixture(scope="session")
async def pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    # Connections opened up front, so concurrent claimers really run side by side from the start.
    created = await create_pool(database.dsn, min_size=6, max_size=10)
    yield created
    await created.close()


@pytest_asyncio.fixture
async def org(pool: asyncpg.Pool) -> str:
    """A fresh organisation's id."""
    return await OrganizationStore(pool).upsert_organization(f"org-{next(_orgs)}")


@pytest_asyncio.fixture
async def other_org(pool: asyncpg.Pool) -> str:
    return await OrganizationStore(pool).upsert_organization(f"other-org-{next(_orgs)}")


@pytest_asyncio.fixture
async def empty_queue(pool: asyncpg.Pool) -> None:
    """Park every unfinished item earlier tests left behind, so claims see only this test's items."""
    await pool.execute(
        "UPDATE import_items SET available_at = 'infinity' WHERE status IN ('pending', 'running')"
    )
