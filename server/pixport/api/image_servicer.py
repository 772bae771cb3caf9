"""pixport.v1.ImageService: image records and their bytes (streamed google.api.HttpBody)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2

from pixport.api import convert
from pixport.api.auth import authenticate, metadata_value
from pixport.api.context import ApiContext
from pixport.api.errors import domain_errors
from pixport.blobs import BlobNotFound, BlobStore, BlobStoreUnavailable
from pixport.domain.errors import NotFound
from pixport.domain.images import Images
from pixport.v1 import image_pb2, image_service_pb2, image_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
CHUNK_SIZE = 256 * 1024
NOT_MODIFIED_HEADER = "x-pixport-not-modified"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


class ImageServicer(image_service_pb2_grpc.ImageServiceServicer):
    def __init__(self, api: ApiContext, images: Images, blobs: BlobStore) -> None:
        self._api = api
        self._images = images
        self._blobs = blobs

    async def GetImage(
        self, request: image_service_pb2.GetImageRequest, context: Context
    ) -> image_pb2.Image:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            record = await self._images.get(principal, request.media_id)
        return convert.image(record, self._api.urls(context))

    async def GetImageRendition(
        self, request: image_service_pb2.GetImageRenditionRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async with domain_errors(context):
            location = await self._images.locate(request.media_id, request.rendition, request.v)
        etag = f'"{location.key[:32]}"'
        headers = [("etag", etag), ("cache-control", location.cache_control)]
        if location.mime_type == "image/svg+xml":
            headers.append(("content-security-policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'"))
        not_modified = etag_matches(metadata_value(context, "if-none-match"), etag)
        # Streamed: never more than one chunk of an original in memory, whichever the store.
        chunks = self._blobs.read_chunks(location.key, CHUNK_SIZE)
        try:
            async with domain_errors(context):
                try:
                    if not_modified:
                        if not await self._blobs.exists(location.key):
                            raise BlobNotFound(location.key)
                        first = b""
                    else:
                        first = await anext(chunks, b"")
                except BlobNotFound:
                    raise NotFound(f"the bytes of image {request.media_id!r} are not available") from None
                except BlobStoreUnavailable as error:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"image storage unavailable: {error.reason}")
            if not_modified:
                # The transcoder cannot send a 304 itself: the edge turns this marker into one.
                await context.send_initial_metadata([*headers, (NOT_MODIFIED_HEADER, "1")])
                yield httpbody_pb2.HttpBody(content_type=location.mime_type, data=b"")
                return
            await context.send_initial_metadata(headers)
            yield httpbody_pb2.HttpBody(content_type=location.mime_type, data=first)
            async for chunk in chunks:
                yield httpbody_pb2.HttpBody(data=chunk)
        finally:
            aclose = getattr(chunks, "aclose", None)  # async generators: release the file or HTTP body now
            if aclose is not None:
                await aclose()
