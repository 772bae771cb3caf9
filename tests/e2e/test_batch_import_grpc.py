"""The same API over gRPC: import, status, errors with google.rpc details, health and reflection."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from pixport.v1 import import_job_pb2, import_service_pb2, import_service_pb2_grpc
from support import images
from support.origin import Origin
from support.stack import Stack


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.grpc_target) as opened:
        yield opened


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_import_over_grpc(
    stack: Stack, origin: Origin, org: dict[str, str], channel: grpc.Channel, unique: str
) -> None:
    client = import_service_pb2_grpc.ImportServiceStub(channel)
    url = origin.serve(f"/{unique}/g.png", images.png(64, 32))
    request = import_service_pb2.CreateImportJobRequest(system_name="grpc", images=[
        import_service_pb2.ImageToImport(url=url, id="g1", file_name="g"),
        import_service_pb2.ImageToImport(url=origin.url(f"/{unique}/none.png"), id="g2", file_name="none"),
    ])
    job_id = client.CreateImportJob(request, metadata=_metadata(org["token"])).id
    deadline = time.monotonic() + 60
    while True:
        job = client.GetImportJob(import_service_pb2.GetImportJobRequest(id=job_id), metadata=_metadata(org["token"]))
        if job.finished or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job.state == import_job_pb2.ImportJob.success
    ok, missing = job.images
    assert ok.status == import_job_pb2.ImportItem.success and (ok.image.width, ok.image.height) == (64, 32)
    assert missing.status == import_job_pb2.ImportItem.failed and "404" in missing.reason


def test_grpc_errors_carry_details(org: dict[str, str], channel: grpc.Channel) -> None:
    client = import_service_pb2_grpc.ImportServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        client.CreateImportJob(import_service_pb2.CreateImportJobRequest(), metadata=_metadata(org["token"]))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    assert status is not None
    fields = set()
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields |= {violation.field for violation in bad.field_violations}
    assert {"systemName", "images"} <= fields

    with pytest.raises(grpc.RpcError) as unauthenticated:
        client.GetImportJob(import_service_pb2.GetImportJobRequest(id="x"))
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection(stack: Stack, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    grpcurl = Path(sys.executable).parent / "grpcurl"
    listed = subprocess.run([str(grpcurl), "-plaintext", stack.grpc_target, "list"],
                            capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert {"pixport.v1.ImportService", "pixport.v1.ImageService", "grpc.health.v1.Health"} <= set(listed)
