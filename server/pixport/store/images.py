"""Stored image records."""

from __future__ import annotations

from typing import Any

import asyncpg

from pixport.domain.records import ImageRecord
from pixport.store.queries import QUERIES


def image_record(row: asyncpg.Record, extra: dict[str, Any] | None = None) -> ImageRecord:
    return ImageRecord(
        media_id=row["id"], organization_id=row["organization_id"], system_name=row["system_name"],
        external_id=row["external_id"], title=row["title"], metadata=row["metadata"], sha256=row["sha256"],
        format=row["format"], mime_type=row["mime_type"], width=row["width"], height=row["height"],
        byte_size=row["byte_size"], analysis=row["analysis"], created_at=row["created_at"],
        updated_at=row["updated_at"], extra=extra or {},
    )


class ImageStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_image(self, organization_id: str, media_id: str) -> ImageRecord | None:
        row = await self._pool.fetchrow(QUERIES["get_image"], media_id, organization_id)
        return image_record(row) if row is not None else None

    async def get_blobs(self, media_id: str) -> dict[str, Any] | None:
        """The blob keys of an image's original and renditions (capability lookup: no organisation)."""
        row = await self._pool.fetchrow(QUERIES["get_image_blobs"], media_id)
        if row is None:
            return None
        return {"sha256": row["sha256"], "mime_type": row["mime_type"], "analysis": row["analysis"]}
