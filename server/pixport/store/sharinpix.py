"""Albums, single imports, direct-upload registrations and connector settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from pixport.domain.jobs import Admission, job_started_payload
from pixport.domain.records import ImageRecord, Overview
from pixport.domain.sharinpix import FetchPlan, SingleImportRow
from pixport.sealing import Sealer
from pixport.store.images import image_record
from pixport.store.jobs import admit_under_lock
from pixport.store.queries import QUERIES

SYSTEM_NAME = "sharinpix"  # images of the album dialect are keyed (organisation, "sharinpix", their id)


def album_image(row: asyncpg.Record) -> ImageRecord:
    extra = {key: row[key] for key in ("album_id", "provider_info", "processed", "processing_error", "source_url")}
    return image_record(row, extra)


class SharinpixStore:
    def __init__(self, pool: asyncpg.Pool, sealer: Sealer) -> None:
        self._pool = pool
        self._sealer = sealer  # connector credentials are stored sealed

    async def create_single_import(
        self, *, import_id: str, job_id: str, organization_id: str, album_id: str, import_type: str | None,
        params: dict[str, Any], title: str, metadata: dict[str, Any], plan: FetchPlan, admit: Admission,
    ) -> datetime:
        """The import record, its album, and a one-item job on the shared queue, in one transaction."""
        async with self._pool.acquire() as connection, connection.transaction():
            await admit_under_lock(connection, organization_id, admit)
            await connection.execute(QUERIES["upsert_album"], organization_id, album_id)
            await connection.execute(
                QUERIES["insert_single_job"], job_id, organization_id, SYSTEM_NAME, "single_import"
            )
            await connection.execute(
                QUERIES["insert_single_item"], job_id, organization_id, import_id, plan.url, title, metadata,
                album_id, plan.connector, plan.connector_ref, plan.headers,
            )
            await connection.execute(QUERIES["insert_event"], job_id, 1, "job_started",
                                     job_started_payload(Overview(total=1, pending=1)))
            created_at: datetime = await connection.fetchval(
                QUERIES["insert_single_import"], import_id, organization_id, album_id, import_type, params, job_id
            )
            await connection.execute(QUERIES["notify_queue"])
        return created_at

    async def get_single_import(self, organization_id: str, import_id: str) -> SingleImportRow | None:
        row = await self._pool.fetchrow(QUERIES["get_single_import"], import_id, organization_id)
        if row is None:
            return None
        return SingleImportRow(
            id=row["id"], organization_id=row["organization_id"], album_id=row["album_id"],
            import_type=row["import_type"], params=row["params"], created_at=row["created_at"],
            updated_at=row["updated_at"], item_status=row["status"], reason=row["reason"], image_id=row["image_id"],
            pending_headers=row["fetch_headers"],
        )

    async def register_direct_upload(
        self, *, image_id: str, job_id: str, organization_id: str, album_id: str, title: str,
        metadata: dict[str, Any], source_url: str, format_name: str, mime_type: str, width: int, height: int,
        byte_size: int, analysis: dict[str, Any], provider_info: dict[str, Any], admit: Admission,
    ) -> ImageRecord:
        """The image record (processed: false) and a one-item job that fetches and processes its bytes."""
        async with self._pool.acquire() as connection, connection.transaction():
            await admit_under_lock(connection, organization_id, admit)
            await connection.execute(QUERIES["upsert_album"], organization_id, album_id)
            await connection.execute(
                QUERIES["insert_direct_upload"], image_id, organization_id, SYSTEM_NAME, title, metadata, source_url,
                format_name, mime_type, width, height, byte_size, analysis, album_id, provider_info,
            )
            await connection.execute(
                QUERIES["insert_single_job"], job_id, organization_id, SYSTEM_NAME, "direct_upload"
            )
            await connection.execute(
                QUERIES["insert_single_item"], job_id, organization_id, image_id, source_url, title, metadata,
                album_id, "url", None, None,
            )
            await connection.execute(QUERIES["insert_event"], job_id, 1, "job_started",
                                     job_started_payload(Overview(total=1, pending=1)))
            await connection.execute(QUERIES["notify_queue"])
            row = await connection.fetchrow(QUERIES["get_album_image"], organization_id, album_id, image_id)
        assert row is not None  # inserted in this transaction
        return album_image(row)

    async def list_album_images(self, organization_id: str, album_id: str, limit: int) -> list[ImageRecord]:
        rows = await self._pool.fetch(QUERIES["list_album_images"], organization_id, album_id, limit)
        return [album_image(row) for row in rows]

    async def get_album_image(self, organization_id: str, album_id: str, image_id: str) -> ImageRecord | None:
        row = await self._pool.fetchrow(QUERIES["get_album_image"], organization_id, album_id, image_id)
        return album_image(row) if row else None

    async def set_connector(self, organization_name: str, kind: str, config: dict[str, Any]) -> str | None:
        async with self._pool.acquire() as connection, connection.transaction():
            organization_id = await connection.fetchval(QUERIES["get_organization_by_name"], organization_name)
            if organization_id is None:
                return None
            await connection.execute(
                QUERIES["upsert_connector"], organization_id, kind, self._sealer.seal_config(config)
            )
        return str(organization_id)

    async def connector(self, organization_id: str, kind: str) -> dict[str, Any] | None:
        config: dict[str, Any] | None = await self._pool.fetchval(QUERIES["get_connector"], organization_id, kind)
        return self._sealer.unseal_config(config) if config is not None else None

    async def update_connector(self, organization_id: str, kind: str, changes: dict[str, Any]) -> None:
        await self._pool.execute(
            QUERIES["merge_connector_config"], organization_id, kind, self._sealer.seal_config(changes)
        )
