"""`pixport import FILE.json [--watch]`: submit a batch over gRPC and follow it live."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console

from pixport.transport.hints import rpc_problem, token_problem
from pixport.transport.progress import FINAL_ITEM, Tally, follow
from pixport.v1 import import_service_pb2, import_service_pb2_grpc

__all__ = ["FINAL_ITEM", "Tally", "load_request", "main_import", "run_import"]


def load_request(path: Path) -> import_service_pb2.CreateImportJobRequest:
    try:
        body: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SystemExit(f"pixport: cannot read {path}: {error}") from None
    request = import_service_pb2.CreateImportJobRequest()
    try:
        json_format.ParseDict(body, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise SystemExit(f"pixport: {path} is not a batch import body: {error}") from None
    return request


def run_import(path: Path, *, server: str, token: str, watch: bool, console: Console | None = None,
               listens: str = "") -> int:
    console = console or Console(stderr=True)
    if not console.is_terminal:
        console.width = max(console.width, 160)  # logs and pipes: never cut the progress line
    request = load_request(path)
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(server) as channel:
        client = import_service_pb2_grpc.ImportServiceStub(channel)
        try:
            job_id = client.CreateImportJob(request, metadata=metadata, timeout=60).id
        except grpc.RpcError as error:
            console.print(f"[red]import refused[/red]: {rpc_problem(error, server, listens or server)}")
            return 2
        print(json.dumps({"id": job_id}), flush=True)
        if not watch:
            return 0
        return follow(client, job_id, metadata, Tally(len(request.images)), console)


def main_import(path: str, server: str, token: str | None, watch: bool, listens: str = "") -> int:
    problem = token_problem(token)
    if problem is not None or token is None:
        print(f"pixport: {problem}", file=sys.stderr)
        return 2
    return run_import(Path(path), server=server, token=token, watch=watch, listens=listens)
