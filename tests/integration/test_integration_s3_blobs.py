"""S3BlobStore against a real S3 HTTP endpoint (moto in server mode on loopback)."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from pixport import blobs
from pixport.blobs import BlobNotFound, BlobStoreUnavailable
from pixport.blobs.s3 import S3BlobStore
from pixport.observability.metrics import BLOB_BYTES_WRITTEN
from support.s3 import CREDENTIALS, MotoServer
from support.stack import free_port

_buckets = itertools.count(1)


@pytest.fixture
def s3_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": moto.url}.items():
        monkeypatch.setenv(name, value)
    yield moto


@pytest_asyncio.fixture
async def bucket(s3_env: MotoServer) -> str:
    name = f"pixport-blobs-{next(_buckets)}"
    s3_env.create_bucket(name)
    return name


@pytest_asyncio.fixture
async def store(bucket: str) -> AsyncIterator[S3BlobStore]:
    opened = S3BlobStore(bucket, "tenant/blobs")
    yield opened
    await opened.close()


async def read(store: S3BlobStore, key: str, chunk_size: int = 1 << 20) -> bytes:
    return b"".join([chunk async for chunk in store.read_chunks(key, chunk_size)])


def test_the_url_selects_s3(tmp_path: Path, s3_env: MotoServer) -> None:
    selected = blobs.from_url("s3://my-bucket/some/prefix/", tmp_path)
    assert isinstance(selected, S3BlobStore)
    assert (selected.bucket, selected.prefix, selected.endpoint_url) == ("my-bucket", "some/prefix/", s3_env.url)


async def test_objects_are_whole_content_addressed_and_under_the_prefix(
    store: S3BlobStore, bucket: str, moto: MotoServer
) -> None:
    data = [os.urandom(3 * 1024 * 1024), b"rendition", b"rendition", b""]
    written = BLOB_BYTES_WRITTEN._value.get()
    keys = await store.put_all(data)
    assert keys == [hashlib.sha256(d).hexdigest() for d in data]
    assert moto.objects(bucket) == {f"tenant/blobs/{k}": len(d) for k, d in zip(keys, data, strict=True)}
    assert moto.get(bucket, f"tenant/blobs/{keys[0]}") == data[0]
    assert BLOB_BYTES_WRITTEN._value.get() == written + len(data[0]) + len(b"rendition")
    before = moto.client().head_object(Bucket=bucket, Key=f"tenant/blobs/{keys[0]}")["LastModified"]
    assert await store.put_all(data[:2]) == keys[:2]  # existing: not written again, large or small
    assert BLOB_BYTES_WRITTEN._value.get() == written + len(data[0]) + len(b"rendition")
    assert moto.client().head_object(Bucket=bucket, Key=f"tenant/blobs/{keys[0]}")["LastModified"] == before


async def test_reads_stream_in_chunks(store: S3BlobStore) -> None:
    data = os.urandom(600 * 1024)
    key = await store.put(data)
    chunks = [chunk async for chunk in store.read_chunks(key, 64 * 1024)]
    assert len(chunks) >= 10 and max(len(c) for c in chunks) <= 64 * 1024
    assert b"".join(chunks) == data
    assert await read(store, await store.put(b"")) == b""


async def test_exists_missing_and_delete(store: S3BlobStore, bucket: str, moto: MotoServer) -> None:
    key = await store.put(b"to delete")
    assert await store.exists(key)
    await store.delete(key)
    assert not await store.exists(key)
    await store.delete(key)  # idempotent
    assert moto.objects(bucket) == {}
    with pytest.raises(BlobNotFound):
        await read(store, key)
    assert not await store.exists("../etc/passwd")
    with pytest.raises(KeyError):
        await read(store, "A" * 64)


async def test_sweep_aborts_only_stale_multipart_uploads(store: S3BlobStore, bucket: str, moto: MotoServer) -> None:
    moto.client().create_multipart_upload(Bucket=bucket, Key="tenant/blobs/leftover")
    moto.client().create_multipart_upload(Bucket=bucket, Key="elsewhere/not-ours")
    # moto dates every upload in 2010: "fresh" is what started less than a century ago.
    assert await store.sweep_temporary(older_than_seconds=100 * 365 * 86400) == 0
    assert await store.sweep_temporary(older_than_seconds=3600) == 1
    left = moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [upload["Key"] for upload in left] == ["elsewhere/not-ours"]


async def test_check_passes_on_a_usable_bucket(store: S3BlobStore) -> None:
    await store.check()


async def test_a_missing_bucket_is_named(s3_env: MotoServer) -> None:
    store = S3BlobStore("no-such-bucket-here")
    try:
        with pytest.raises(BlobStoreUnavailable, match=r"bucket s3://no-such-bucket-here does not exist"):
            await store.check()
        with pytest.raises(BlobStoreUnavailable, match="does not exist"):
            await store.put(b"x")
    finally:
        await store.close()


async def test_an_unreachable_endpoint_is_named(s3_env: MotoServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    store = S3BlobStore("any", endpoint_url=closed)
    try:
        with pytest.raises(BlobStoreUnavailable, match=rf"cannot reach the S3 endpoint {closed}"):
            await store.check()
    finally:
        await store.close()


async def test_missing_credentials_are_named(
    s3_env: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3BlobStore("any")
    try:
        with pytest.raises(BlobStoreUnavailable, match="no AWS credentials"):
            await store.check()
    finally:
        await store.close()


async def test_refused_credentials_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    strict = MotoServer(tmp_path / "moto-auth.log", authenticate=True)
    try:
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        store = S3BlobStore("any-bucket", endpoint_url=strict.url)
        try:
            with pytest.raises(BlobStoreUnavailable, match=rf"the credentials were refused by {strict.url} "
                                                            r"\(InvalidAccessKeyId\): check AWS_ACCESS_KEY_ID"):
                await store.check()
        finally:
            await store.close()
    finally:
        strict.close()
