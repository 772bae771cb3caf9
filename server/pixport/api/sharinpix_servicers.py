"""pixport.v1.SingleImportService and pixport.v1.AlbumService: the SharinPix dialect over gRPC."""

from __future__ import annotations

from typing import Any

import grpc

from pixport.api.auth import authenticate
from pixport.api.context import ApiContext
from pixport.api.convert import plain_struct
from pixport.api.errors import domain_errors
from pixport.api.sharinpix_convert import album_image as album_image_message
from pixport.api.sharinpix_convert import import_record
from pixport.domain.errors import FieldViolation, InvalidArgument
from pixport.domain.sharinpix import AlbumImages, ImportParams, SingleImports
from pixport.v1 import (
    album_service_pb2,
    album_service_pb2_grpc,
    single_import_service_pb2,
    single_import_service_pb2_grpc,
)

Context = grpc.aio.ServicerContext[Any, Any]
MAX_ALBUM_PAGE = 500


class SingleImportServicer(single_import_service_pb2_grpc.SingleImportServiceServicer):
    def __init__(self, api: ApiContext, imports: SingleImports) -> None:
        self._api = api
        self._imports = imports

    async def CreateImport(
        self, request: single_import_service_pb2.CreateImportRequest, context: Context
    ) -> single_import_service_pb2.ImportRecord:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            params = ImportParams(
                album_id=request.album_id, filename=request.filename,
                metadata=plain_struct(request.metadata, "metadata"),
                metadatas=plain_struct(request.metadatas, "metadatas"), url=request.url,
                headers=dict(request.headers), import_type=request.import_type, attachment_id=request.attachment_id,
            )
            import_id, _created_at, _echoed = await self._imports.create(principal, params)
            view = await self._imports.get(principal, import_id)
        return import_record(view, with_status=False)

    async def GetImport(
        self, request: single_import_service_pb2.GetImportRequest, context: Context
    ) -> single_import_service_pb2.ImportRecord:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            view = await self._imports.get(principal, request.id)
        return import_record(view, with_status=True)


class AlbumServicer(album_service_pb2_grpc.AlbumServiceServicer):
    def __init__(self, api: ApiContext, images: AlbumImages) -> None:
        self._api = api
        self._images = images

    async def CreateAlbumImage(
        self, request: album_service_pb2.CreateAlbumImageRequest, context: Context
    ) -> album_service_pb2.AlbumImage:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            if not request.HasField("cloudinary"):
                raise InvalidArgument([FieldViolation("cloudinary", "is required (the provider's upload result)")])
            record = await self._images.register(
                principal, request.album_id, plain_struct(request.cloudinary, "cloudinary"),
                plain_struct(request.metadatas, "metadatas"),
            )
        return album_image_message(record, self._api.urls(context))

    async def ListAlbumImages(
        self, request: album_service_pb2.ListAlbumImagesRequest, context: Context
    ) -> album_service_pb2.ListAlbumImagesResponse:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            if request.page_size < 0:
                raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
            records = await self._images.list_images(
                principal, request.album_id, min(request.page_size or 100, MAX_ALBUM_PAGE)
            )
        urls = self._api.urls(context)
        return album_service_pb2.ListAlbumImagesResponse(images=[album_image_message(r, urls) for r in records])

    async def GetAlbumImage(
        self, request: album_service_pb2.GetAlbumImageRequest, context: Context
    ) -> album_service_pb2.AlbumImage:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            record = await self._images.get(principal, request.album_id, request.id)
        return album_image_message(record, self._api.urls(context))
