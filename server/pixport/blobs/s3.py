"""Blobs as objects in an S3-compatible bucket (AWS, MinIO, Ceph, R2...) through aiobotocore.

Credentials and region come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE, instance roles); AWS_ENDPOINT_URL
(or AWS_ENDPOINT_URL_S3) points at a non-AWS endpoint. Every write is one PutObject, so an object
is either absent or whole; reads stream the body in chunks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from pixport.blobs.base import BlobNotFound, BlobStoreUnavailable, blob_key, valid_key
from pixport.observability.metrics import BLOB_BYTES_WRITTEN

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# Parallel PutObjects per put_all, and connections per process.
_PARALLEL_PUTS = 8
_MAX_CONNECTIONS = 64
_ASK_FIRST_BYTES = 1 << 20
_MISSING = {"404", "NoSuchKey", "NotFound"}
# If-None-Match refused: the object exists (409: another writer of the same key was in flight).
_ALREADY_THERE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_NO_BUCKET = {"NoSuchBucket"}
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "InvalidToken",
                    "ExpiredToken", "AuthorizationHeaderMalformed"}
_DENIED = {"403", "AccessDenied", "Forbidden", "AllAccessDisabled"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self._client: S3Client | None = None
        self._exit = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()

    def object_name(self, key: str) -> str:
        return f"{self.prefix}{valid_key(key)}"

    async def _s3(self) -> S3Client:
        if self._client is not None:
            return self._client
        async with self._opening:
            if self._client is None:
                config = AioConfig(
                    connect_timeout=5, read_timeout=30, max_pool_connections=_MAX_CONNECTIONS,
                    retries={"max_attempts": 3, "mode": "standard"},
                    # Third-party endpoints know path-style addressing and plain Content-MD5.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                creating = get_session().create_client("s3", endpoint_url=self.endpoint_url, config=config)
                opened: S3Client = await self._exit.enter_async_context(creating)
                self._client = opened
                return opened
            return self._client

    def _where(self) -> str:
        return self.endpoint_url or "AWS S3"

    def unavailable(self, error: Exception) -> BlobStoreUnavailable:
        """An operator's reason: which of bucket, credentials or endpoint is wrong."""
        bucket = f"s3://{self.bucket}"
        if isinstance(error, NoCredentialsError):
            return BlobStoreUnavailable(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            )
        if isinstance(error, ClientError):
            code = _code(error)
            if code in _NO_BUCKET:
                return BlobStoreUnavailable(f"bucket {bucket} does not exist at {self._where()}")
            if code in _BAD_CREDENTIALS:
                return BlobStoreUnavailable(
                    f"the credentials were refused by {self._where()} ({code}): check AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY"
                )
            if code in _DENIED:
                return BlobStoreUnavailable(
                    f"access to {bucket} denied ({code}): the credentials lack permission on the bucket"
                )
            return BlobStoreUnavailable(f"{self._where()} answered {code or 'an error'} for {bucket}")
        if isinstance(error, EndpointUnreachable | OSError | asyncio.TimeoutError):
            return BlobStoreUnavailable(f"cannot reach the S3 endpoint {self._where()}: {error}")
        return BlobStoreUnavailable(f"S3 request to {self._where()} failed: {error}")

    async def put(self, data: bytes) -> str:
        return (await self.put_all([data]))[0]

    async def put_all(self, blobs: Sequence[bytes], keys: Sequence[str] | None = None) -> list[str]:
        if keys is None:
            keys = await asyncio.to_thread(lambda: [blob_key(data) for data in blobs])
        unique = dict(zip(keys, blobs, strict=True))
        limit = asyncio.Semaphore(_PARALLEL_PUTS)

        async def store(key: str, data: bytes) -> None:
            async with limit:
                # Existing objects are never rewritten: a conditional PUT (If-None-Match: *) refuses
                # them in the same request; large ones are asked about first, to skip the upload.
                if len(data) >= _ASK_FIRST_BYTES and await self.exists(key):
                    return
                md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
                try:
                    await (await self._s3()).put_object(
                        Bucket=self.bucket, Key=self.object_name(key), Body=data, ContentMD5=md5,
                        ContentType="application/octet-stream", IfNoneMatch="*",
                    )
                except ClientError as error:
                    if _code(error) in _ALREADY_THERE:
                        return
                    raise self.unavailable(error) from error
                except (BotoCoreError, OSError) as error:
                    raise self.unavailable(error) from error
                BLOB_BYTES_WRITTEN.inc(len(data))

        await asyncio.gather(*(store(key, data) for key, data in unique.items()))
        return list(keys)

    async def exists(self, key: str) -> bool:
        try:
            name = self.object_name(key)
        except KeyError:
            return False
        try:
            await (await self._s3()).head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise self.unavailable(error) from error
        except (BotoCoreError, OSError) as error:
            raise self.unavailable(error) from error
        return True

    async def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        name = self.object_name(key)
        try:
            response = await (await self._s3()).get_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise BlobNotFound(key) from None
            raise self.unavailable(error) from error
        except (BotoCoreError, OSError) as error:
            raise self.unavailable(error) from error
        body: Any = response["Body"]
        try:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk
        except (BotoCoreError, OSError) as error:
            raise self.unavailable(error) from error
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        name = self.object_name(key)
        try:
            await (await self._s3()).delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError, OSError) as error:
            raise self.unavailable(error) from error

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        """Whole-object PUTs leave nothing behind; abort stale multipart uploads under the prefix
        (from other tools or an interrupted copy) so they stop costing storage."""
        cutoff = time.time() - older_than_seconds
        aborted = 0
        try:
            s3 = await self._s3()
            paginator = s3.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < cutoff:
                        await s3.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (BotoCoreError, ClientError, OSError) as error:
            raise self.unavailable(error) from error
        return aborted

    async def check(self) -> None:
        # ListObjectsV2 rather than HeadBucket: a HEAD answer has no body, so a bare 403 could not
        # tell refused credentials from missing permissions.
        try:
            await (await self._s3()).list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except (BotoCoreError, ClientError, OSError) as error:
            raise self.unavailable(error) from error

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None
