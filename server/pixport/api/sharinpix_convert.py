"""SharinPix-shaped records (snake_case, nulls where the dialect has them) from domain records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2

from pixport.api.convert import struct
from pixport.domain.records import ImageRecord
from pixport.domain.sharinpix import ImportView
from pixport.domain.urls import PublicUrls
from pixport.v1 import album_service_pb2, single_import_service_pb2

_EXIF_TIME = "%Y:%m:%d %H:%M:%S"
_FORMAT_NAMES = {"jpeg": "jpg"}  # the dialect's spelling


def when(value: datetime) -> str:
    """`2019-04-08T19:38:57.430+00:00`: milliseconds and an explicit offset, as the dialect writes times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def value(data: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    if data is None:
        message.null_value = struct_pb2.NULL_VALUE
    else:
        json_format.ParseDict(data, message)
    return message


def import_record(view: ImportView, *, with_status: bool) -> single_import_service_pb2.ImportRecord:
    row = view.row
    done = view.status == "done"
    record = single_import_service_pb2.ImportRecord(
        id=row.id, organization_id=row.organization_id, image_id=value(row.image_id if done else None),
        import_type=value(row.import_type), album_id=row.album_id, params=struct(view.params),
        created_at=when(row.created_at), updated_at=when(row.updated_at if with_status else row.created_at),
    )
    if with_status:
        record.status = view.status
        if view.status == "failed" and row.reason:
            record.error = row.reason
    return record


def _taken_at(record: ImageRecord) -> str | None:
    taken = record.analysis.get("taken_at")
    if taken:
        return when(datetime.fromisoformat(taken))
    original = (record.analysis.get("exif") or {}).get("DateTimeOriginal")
    try:
        return when(datetime.strptime(str(original), _EXIF_TIME).replace(tzinfo=UTC)) if original else None
    except ValueError:
        return None


def album_image(record: ImageRecord, urls: PublicUrls) -> album_service_pb2.AlbumImage:
    extra = record.extra
    analysis = record.analysis
    processed = bool(extra.get("processed"))
    source_url = str(extra.get("source_url") or "")

    def url(name: str) -> str:
        if not processed:
            return source_url  # until pixport has the bytes, the provider's copy stands in
        if name == "original" or name not in analysis.get("renditions", {}):
            return urls.original(record.media_id, record.sha256)
        return urls.rendition(record.media_id, name, record.sha256)

    colors = analysis.get("colors") or []
    exif = analysis.get("exif")
    message = album_service_pb2.AlbumImage(
        id=record.media_id, public_id=record.media_id, infos=struct(extra.get("provider_info") or {}),
        exifs=value(exif or None), gps=value(analysis.get("gps")), gps_ip=value(None), gps_exifs=value(None),
        gps_html=value(None), created_at=when(record.created_at), updated_at=when(record.updated_at),
        taken_at=value(_taken_at(record)), width=record.width, height=record.height, rotation=0,
        metadatas=struct(record.metadata), original_url=url("original"), original_width=record.width,
        original_height=record.height, filename=record.title,
        format=_FORMAT_NAMES.get(record.format, record.format), title=value(None), description=value(None),
        page=1, group_id=value(None), color=colors[0]["hex"] if colors else "#", size=str(record.byte_size),
        processed=processed, processing_error=value(extra.get("processing_error")),
        album_id=str(extra.get("album_id") or ""),
    )
    for name in ("fill100", "fit2000", "mini", "large", "full"):
        message.external_urls[name] = url(name)
    for name, source in (("original", "original"), ("full_no_sharinpix", "full"), ("full", "full"),
                         ("large", "large"), ("mini", "mini")):
        message.thumbnails[name] = url(source)
    return message
