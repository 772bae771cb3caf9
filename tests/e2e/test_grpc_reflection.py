"""`grpcurl describe` resolves every method of every pixport service, not only the services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pixport.v1 import import_service_pb2
from support.stack import Stack

GRPCURL = Path(sys.executable).parent / "grpcurl"


def grpcurl(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GRPCURL), "-plaintext", stack.grpc_target, *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_describe_works_on_methods(stack: Stack) -> None:
    services = [name for name in grpcurl(stack, "list").stdout.split() if name.startswith("pixport.v1.")]
    assert "pixport.v1.ImportService" in services
    for service_name in services:
        methods = grpcurl(stack, "list", service_name).stdout.split()
        assert methods, service_name
        for method in methods:
            described = grpcurl(stack, "describe", method)
            assert described.returncode == 0, (method, described.stderr)
            assert f"{method} is a method" in described.stdout, described.stdout
    service = import_service_pb2.DESCRIPTOR.services_by_name["ImportService"]
    assert {f"pixport.v1.ImportService.{m}" for m in service.methods_by_name} <= set(
        grpcurl(stack, "list", "pixport.v1.ImportService").stdout.split())
    missing = grpcurl(stack, "describe", "pixport.v1.ImportService.NoSuchMethod")
    assert missing.returncode != 0 and "not found" in missing.stderr.lower()
