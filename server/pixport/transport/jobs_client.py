"""`pixport jobs list|status ID|watch ID|cancel ID`: the job lifecycle over gRPC."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from pixport.transport.hints import rpc_problem, token_problem
from pixport.transport.progress import Tally, follow
from pixport.v1 import import_job_pb2, import_service_pb2, import_service_pb2_grpc

Stub = import_service_pb2_grpc.ImportServiceStub


@dataclass(frozen=True)
class Target:
    server: str
    token: str | None
    listens: str  # where `make run` listens, for the "is it running?" hint


def job_json(job: import_job_pb2.ImportJob) -> dict[str, Any]:
    """The job as REST shows it (camelCase JSON names)."""
    return json_format.MessageToDict(job)


def jobs_table(jobs: list[import_job_pb2.ImportJob]) -> Table:
    table = Table("id", "state", "started (UTC)", "total", "ok", "skip", "fail", "pending", box=None)
    for job in jobs:
        o = job.overview
        table.add_row(job.id, import_job_pb2.ImportJob.State.Name(job.state), job.started_at,
                      str(o.total), str(o.success), str(o.skipped), str(o.failed), str(o.pending))
    return table


def _call(target: Target, action: Callable[[Stub, tuple[tuple[str, str], ...]], int]) -> int:
    problem = token_problem(target.token)
    if problem is not None:
        print(f"pixport: {problem}", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {target.token}"),)
    with grpc.insecure_channel(target.server) as channel:
        try:
            return action(Stub(channel), metadata)
        except grpc.RpcError as error:
            print(f"pixport: {rpc_problem(error, target.server, target.listens)}", file=sys.stderr)
            return 2


def list_jobs(target: Target, *, page_size: int, as_json: bool, console: Console | None = None) -> int:
    def action(stub: Stub, metadata: tuple[tuple[str, str], ...]) -> int:
        response = stub.ListImportJobs(import_service_pb2.ListImportJobsRequest(page_size=page_size),
                                       metadata=metadata, timeout=30)
        if as_json:
            for job in response.import_jobs:
                print(json.dumps(job_json(job)))
        else:
            (console or Console(width=120)).print(jobs_table(list(response.import_jobs)))
        return 0

    return _call(target, action)


def job_status(target: Target, job_id: str) -> int:
    def action(stub: Stub, metadata: tuple[tuple[str, str], ...]) -> int:
        job = stub.GetImportJob(import_service_pb2.GetImportJobRequest(id=job_id), metadata=metadata, timeout=30)
        print(json.dumps(job_json(job), indent=2))
        return 0

    return _call(target, action)


def cancel_job(target: Target, job_id: str) -> int:
    def action(stub: Stub, metadata: tuple[tuple[str, str], ...]) -> int:
        job = stub.CancelImportJob(import_service_pb2.CancelImportJobRequest(id=job_id), metadata=metadata,
                                   timeout=30)
        print(json.dumps(job_json(job)))
        return 0

    return _call(target, action)


def watch_job(target: Target, job_id: str, console: Console | None = None) -> int:
    console = console or Console(stderr=True)

    def action(stub: Stub, metadata: tuple[tuple[str, str], ...]) -> int:
        # Fails fast (404, 401, unreachable) before the progress bar is drawn.
        job = stub.GetImportJob(import_service_pb2.GetImportJobRequest(id=job_id), metadata=metadata, timeout=30)
        return follow(stub, job_id, metadata, Tally(job.overview.total or len(job.images)), console)

    return _call(target, action)
