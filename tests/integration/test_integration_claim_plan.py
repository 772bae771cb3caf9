"""The claim under stale statistics: a backlog bulk-submitted after the last ANALYZE, before autovacuum
analyses it, must not make any step of the claim read the backlog, in the generic plan or a custom one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from integration_support import bulk_job
from pixport.store.organizations import OrganizationStore
from pixport.store.queries import QUERIES

pytestmark = pytest.mark.usefixtures("empty_queue")

_ORGANISATIONS, _PER_ORGANISATION, _LIMIT = 5, 10_000, 8
# 64 candidates per organisation read from its pending index, $3 primary-key probes to lock and as many to
# update: a few hundred rows whatever the backlog; a scan of an index of the backlog reads tens of thousands.
_MOST_ROWS_READ = 1_000
_names = itertools.count(1)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _rows_read(node: dict[str, Any]) -> int:
    """Rows a node produced or looked at and threw away, over all its loops."""
    kept = round(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
    return kept + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)


async def _explain_claim(pool: asyncpg.Pool, connection: asyncpg.Connection, jobs: list[str]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of one claim of the prepared statement `claim`, rolled back (it really runs)."""
    claim = connection.transaction()
    await claim.start()
    try:
        await connection.execute(QUERIES["claim_planner_settings"])  # as QueueStore.claim does
        [explained] = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim ('plan', 60, {_LIMIT})"
        )  # the pool's json codec decoded it
        # Only the rows taken are locked: the other candidates (each organisation's first 64) stay free
        # for concurrent claimers.
        async with pool.acquire() as other, other.transaction():
            free = await other.fetchval(
                "SELECT count(*) FROM (SELECT id FROM import_items WHERE job_id = ANY($1::text[])"
                " AND position < 64 FOR UPDATE SKIP LOCKED) AS free", jobs,
            )
        assert free == 64 * _ORGANISATIONS - _LIMIT
    finally:
        await claim.rollback()
    result: dict[str, Any] = explained
    return result


# asyncpg prepares every statement, and PostgreSQL may switch a prepared statement to its generic plan after
# five executions: both plans must hold.
@pytest.mark.parametrize("plan", ["force_generic_plan", "force_custom_plan"])
async def test_the_claim_reads_no_backlog_under_stale_statistics(pool: asyncpg.Pool, plan: str) -> None:
    orgs = [await OrganizationStore(pool).upsert_organization(f"plan-org-{next(_names)}")
            for _ in range(_ORGANISATIONS)]
    jobs: list[str] = []
    async with pool.acquire() as connection:
        indexes = {row["indexname"] for row in await connection.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'import_items'")}
        # The worst cases: the planner last saw a small table (a first migration), or a table whose
        # backlog had just been deleted (it counts no live rows in the pages), and nothing analyses it again.
        await connection.execute("ALTER TABLE import_items SET (autovacuum_enabled = false)")
        try:
            await connection.execute(f"SET plan_cache_mode = {plan}")
            for statistics in ("the table as it was", "a deleted backlog"):
                await connection.execute("ANALYZE import_items")
                jobs = [await bulk_job(connection, org, _PER_ORGANISATION) for org in orgs]
                await connection.execute(f"PREPARE claim (text, float8, bigint) AS {QUERIES['claim_items']}")
                try:
                    top = await _explain_claim(pool, connection, jobs)
                finally:
                    await connection.execute("DEALLOCATE claim")
                reads = [
                    (node["Node Type"], node.get("Index Name"), _rows_read(node))
                    for node in _nodes(top["Plan"])
                    if node.get("Relation Name") == "import_items" or node.get("Index Name") in indexes
                ]
                assert top["Plan"]["Actual Rows"] == _LIMIT, statistics
                assert len(reads) >= 4, (statistics, reads)  # probe, expired, candidates, lock, update
                assert max(rows for _, _, rows in reads) <= _MOST_ROWS_READ, (statistics, reads, top["Execution Time"])
                await connection.execute("DELETE FROM import_jobs WHERE id = ANY($1::text[])", jobs)
                jobs = []
        finally:
            await connection.execute("RESET plan_cache_mode")
            await connection.execute("ALTER TABLE import_items RESET (autovacuum_enabled)")
            await connection.execute("DELETE FROM import_jobs WHERE id = ANY($1::text[])", jobs)
            await connection.execute("ANALYZE import_items")
