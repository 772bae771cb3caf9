"""`pixport import FILE.json [--watch]`: submit a batch over gRPC and follow it live."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pixport.v1 import import_job_pb2, import_service_pb2, import_service_pb2_grpc

FINAL_ITEM = {
    import_job_pb2.ImportItem.success: "success",
    import_job_pb2.ImportItem.skipped: "skipped",
    import_job_pb2.ImportItem.failed: "failed",
    import_job_pb2.ImportItem.cancelled: "cancelled",
}


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


class Tally:
    def __init__(self, total: int) -> None:
        self.total = total
        self.counts = {"success": 0, "skipped": 0, "failed": 0, "cancelled": 0}
        self.failures: list[tuple[str, str]] = []
        self.state = "started"

    def record(self, item: import_job_pb2.ImportItem) -> bool:
        status = FINAL_ITEM.get(item.status)
        if status is None:
            return False
        self.counts[status] += 1
        if status == "failed":
            self.failures.append((item.external_id, item.reason))
        return True

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        return " ".join(f"{name} {count}" for name, count in self.counts.items())


def run_import(path: Path, *, server: str, token: str, watch: bool, console: Console | None = None) -> int:
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
            console.print(f"[red]import refused[/red]: {error.code().name}: {error.details()}")
            return 2
        print(json.dumps({"id": job_id}), flush=True)
        if not watch:
            return 0
        tally = Tally(len(request.images))
        return _follow(client, job_id, metadata, tally, console)


def _follow(
    client: import_service_pb2_grpc.ImportServiceStub, job_id: str, metadata: tuple[tuple[str, str], ...],
    tally: Tally, console: Console,
) -> int:
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    )
    started = time.monotonic()
    last_sequence = 0
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(job_id, total=tally.total, counts=tally.summary(), rate="")
        finished = False
        while not finished:  # a dropped stream resumes after the last sequence seen
            try:
                stream = client.WatchImportJob(
                    import_service_pb2.WatchImportJobRequest(id=job_id, after_sequence=last_sequence),
                    metadata=metadata,
                )
                for event in stream:
                    last_sequence = max(last_sequence, event.sequence)
                    kind = event.WhichOneof("event")
                    if kind == "snapshot":
                        for item in event.snapshot.images:
                            tally.record(item)
                    elif kind == "item_finished":
                        tally.record(event.item_finished)
                    elif kind == "job_finished":
                        tally.state = import_job_pb2.ImportJob.State.Name(event.job_finished.state)
                        finished = True
                    if kind == "snapshot" and event.snapshot.finished:
                        tally.state = import_job_pb2.ImportJob.State.Name(event.snapshot.state)
                        finished = True
                    elapsed = max(time.monotonic() - started, 1e-6)
                    progress.update(task, completed=tally.done, counts=tally.summary(),
                                    rate=f"{tally.done / elapsed:.1f} img/s")
            except grpc.RpcError as error:
                if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL):
                    time.sleep(1)
                    continue
                console.print(f"[red]watch failed[/red]: {error.code().name}: {error.details()}")
                return 2
    console.print(f"job {job_id}: {tally.state} ({tally.summary()}; {tally.done}/{tally.total} done)")
    for external_id, reason in tally.failures:
        console.print(f"  [red]failed[/red] {external_id}: {reason}")
    return 1 if tally.failures or tally.state == "failed" else 0


def main_import(path: str, server: str, token: str | None, watch: bool) -> int:
    if not token:
        print("pixport: a token is needed: --token or PIXPORT_TOKEN", file=sys.stderr)
        return 2
    return run_import(Path(path), server=server, token=token, watch=watch)
