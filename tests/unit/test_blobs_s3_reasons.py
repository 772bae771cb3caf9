"""S3 failures become reasons an operator can act on: which of bucket, credentials or endpoint."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from pixport.blobs.s3 import S3BlobStore


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, "PutObject")


@pytest.fixture
def store() -> S3BlobStore:
    return S3BlobStore("photos", "prod", endpoint_url="http://127.0.0.1:9000")


@pytest.mark.parametrize(("error", "reason"), [
    (client_error("NoSuchBucket"), "bucket s3://photos does not exist at http://127.0.0.1:9000"),
    (client_error("InvalidAccessKeyId"), "the credentials were refused by http://127.0.0.1:9000 "
                                         "(InvalidAccessKeyId): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    (client_error("SignatureDoesNotMatch"), "the credentials were refused by http://127.0.0.1:9000 "
                                            "(SignatureDoesNotMatch): check AWS_ACCESS_KEY_ID and "
                                            "AWS_SECRET_ACCESS_KEY"),
    (client_error("AccessDenied"), "access to s3://photos denied (AccessDenied): the credentials lack "
                                   "permission on the bucket"),
    (client_error("403"), "access to s3://photos denied (403): the credentials lack permission on the bucket"),
    (NoCredentialsError(), "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"),
    (client_error("SlowDown"), "http://127.0.0.1:9000 answered SlowDown for s3://photos"),
])
def test_reasons(store: S3BlobStore, error: Exception, reason: str) -> None:
    assert store.unavailable(error).reason == reason


def test_an_unreachable_endpoint_is_named(store: S3BlobStore) -> None:
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/photos")
    assert store.unavailable(error).reason.startswith("cannot reach the S3 endpoint http://127.0.0.1:9000: ")


def test_object_names_are_prefixed_keys_only(store: S3BlobStore) -> None:
    key = "ab" * 32
    assert store.object_name(key) == f"prod/{key}"
    assert S3BlobStore("photos").object_name(key) == key
    assert S3BlobStore("photos", "/a/b/").object_name(key) == f"a/b/{key}"
    with pytest.raises(KeyError):
        store.object_name("../" + key[3:])
