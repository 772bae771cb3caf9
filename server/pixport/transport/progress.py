"""Following a job live over WatchImportJob: the tally of outcomes and a progress bar that stays readable
at 80 columns (the count, rate and ETA columns never shrink; the job id and the bar give way)."""

from __future__ import annotations

import time

import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.table import Column

from pixport.v1 import import_job_pb2, import_service_pb2, import_service_pb2_grpc

FINAL_ITEM = {
    import_job_pb2.ImportItem.success: "success",
    import_job_pb2.ImportItem.skipped: "skipped",
    import_job_pb2.ImportItem.failed: "failed",
    import_job_pb2.ImportItem.cancelled: "cancelled",
}


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

    def short(self) -> str:
        """The counts in the bar: `ok 10 skip 1 fail 2` (cancelled only when there are some)."""
        text = f"ok {self.counts['success']} skip {self.counts['skipped']} fail {self.counts['failed']}"
        return text + (f" cxl {self.counts['cancelled']}" if self.counts["cancelled"] else "")

    def rate_and_eta(self, elapsed: float) -> tuple[str, str]:
        if self.done == 0 or elapsed <= 0:
            return "-/s", "-:--:--"
        rate = self.done / elapsed
        remaining = max(self.total - self.done, 0) / rate
        hours, rest = divmod(int(remaining + 0.5), 3600)
        return f"{rate:.1f}/s", f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _fixed(text: str) -> TextColumn:
    return TextColumn(text, table_column=Column(no_wrap=True, overflow="ignore"))


def progress_columns() -> tuple[ProgressColumn, ...]:
    return (
        TextColumn("[bold]{task.description}",
                   table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=1, max_width=16)),
        BarColumn(bar_width=None, table_column=Column(ratio=2, min_width=1)),
        MofNCompleteColumn(table_column=Column(no_wrap=True, overflow="ignore")),
        _fixed("{task.fields[counts]}"), _fixed("{task.fields[rate]}"), _fixed("ETA {task.fields[eta]}"),
    )


def new_progress(console: Console) -> Progress:
    return Progress(*progress_columns(), console=console, transient=False, expand=True)


def follow(
    client: import_service_pb2_grpc.ImportServiceStub, job_id: str, metadata: tuple[tuple[str, str], ...],
    tally: Tally, console: Console,
) -> int:
    """Show the job's progress until it finishes; 1 if an image failed or the job failed, 2 if watching failed."""
    started = time.monotonic()
    last_sequence = 0
    with new_progress(console) as progress:
        task = progress.add_task(job_id, total=tally.total or None, counts=tally.short(), rate="-/s", eta="-:--:--")
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
                        tally.total = tally.total or len(event.snapshot.images)
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
                    rate, eta = tally.rate_and_eta(time.monotonic() - started)
                    progress.update(task, total=tally.total, completed=tally.done, counts=tally.short(),
                                    rate=rate, eta=eta)
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
