"""`pixport check`: can this process reach what its role needs? For container health checks and
for an operator's first look (exit 0, or one line per problem and exit 1)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

from pixport import blobs
from pixport.config import Settings
from pixport.store.db import create_pool, ping

TIMEOUT_SECONDS = 5.0


async def dependency_problems(settings: Settings, dsn: str) -> list[str]:
    """What every `serve` and `work` process must reach: PostgreSQL and the blob store."""
    problems: list[str] = []
    try:
        pool = await asyncio.wait_for(create_pool(dsn, max_size=1), TIMEOUT_SECONDS)
        try:
            await ping(pool, TIMEOUT_SECONDS)
        finally:
            await pool.close()
    except Exception as error:  # any failure is the answer here, reported as such
        problems.append(f"database: {type(error).__name__}: {error}")
    try:
        store = blobs.from_settings(settings)
    except ValueError as error:
        return [*problems, f"blob store: {error}"]
    try:
        await store.check()
    except blobs.BlobStoreUnavailable as error:
        problems.append(f"blob store: {error.reason}")
    finally:
        await store.close()
    return problems


def http_problems(url: str) -> list[str]:
    """An edge: its URL (normally /ready) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (operator's URL)
            if response.status == 200:
                return []
            return [f"{url}: HTTP {response.status}"]
    except urllib.error.HTTPError as error:
        return [f"{url}: HTTP {error.code}: {error.read(300).decode(errors='replace')}"]
    except (urllib.error.URLError, OSError) as error:
        return [f"{url}: {error}"]
