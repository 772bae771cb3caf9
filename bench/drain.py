"""Drain through the real stack: does a 100,000-item backlog drain as fast as a 1,000-item one, and does
another organisation's single image still finish within seconds while it is pending?

bench: run from the repository root with
    PYTHONPATH=server:. .venv/bin/python -m bench.drain [--quick]

It starts its own stack (`pixport up` on free ports, a private data dir, a local origin on 127.0.0.1), so
everything goes through Envoy, the server, the workers and PostgreSQL. The backlog is dead links (URLs the
origin answers with 404): each item is a real claim, fetch and finish, but no pixel work, so the queue's
cost is the largest share of an item and any growth with the backlog shows. Items are spread over
ORGANIZATIONS organisations (the shape of bench/scale.py's claim figures), submitted through the REST API in
batches of 1,000, one after the other, as fast as the API accepts them.

The drain rate is read from the jobs' counters (ListImportJobs, basic view: `total - pending` summed over
the phase's jobs), sampled every POLL_SECONDS: items finished per second over windows of WINDOW items that
start WARM_UP items after the last batch was accepted. The large backlog's rate is the median of
LARGE_WINDOWS consecutive windows; the 1,000-item rate is the median of SMALL_ROUNDS backlogs before and
SMALL_ROUNDS after the large one (the load of a shared machine drifts).
`run(quick)` returns the figures (`make bench` merges them into its JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pixport.v1 import import_service_pb2, import_service_pb2_grpc

from bench.photos import small_pngs
from bench.system import Bench, _timestamp

ORGANIZATIONS = 5
BATCH = 1000
SMALL_BACKLOG = 1000
LARGE_BACKLOG = 100_000
QUICK_LARGE_BACKLOG = 20_000
WARM_UP = 100
WINDOW = 800
LARGE_WINDOWS = 5  # consecutive windows in the large backlog; its rate is their median
SMALL_ROUNDS = 3  # 1,000-item backlogs before and again after the large one; their median is the 1k rate
TAIL = 50  # the last items of a backlog drain with fewer in flight: never part of a window
POLL_SECONDS = 0.25
TARGET_RATIO = 0.7

_STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"drain [{time.perf_counter() - _STARTED:6.1f} s] {message}", flush=True)


# --- pure measuring helpers (unit-tested on tiny input) ---------------------------------------------


class Overview(Protocol):
    total: int
    pending: int


class Job(Protocol):
    id: str

    @property
    def overview(self) -> Overview: ...


def finished_items(jobs: Iterable[Job], job_ids: set[str]) -> int:
    """Items with a final status in the jobs of `job_ids`, from their counters (no item is read)."""
    return sum(job.overview.total - job.overview.pending for job in jobs if job.id in job_ids)


def batch_sizes(total: int, batch: int, organizations: int) -> list[tuple[int, int]]:
    """(organisation index, batch size) in submission order: batches of `batch`, organisations in turn."""
    sizes, left, index = [], total, 0
    while left > 0:
        size = min(batch, left)
        sizes.append((index % organizations, size))
        left -= size
        index += 1
    return sizes


def window_rate(samples: Sequence[tuple[float, int]], start: int, window: int) -> float:
    """Items per second between the first sample with at least `start` finished items and the first later
    one with at least `start + window`. `samples` are (seconds, finished items) in time order."""
    first = next((sample for sample in samples if sample[1] >= start), None)
    if first is None:
        raise ValueError(f"never {start} finished items")
    last = next((sample for sample in samples if sample[1] >= start + window and sample[0] > first[0]), None)
    if last is None:
        if window > 0 and any(sample[1] >= start + window for sample in samples):
            raise ValueError("the window has no duration")
        raise ValueError(f"never {start + window} finished items after the window's start")
    if last[1] == first[1]:
        raise ValueError("the window has no duration")
    return round((last[1] - first[1]) / (last[0] - first[0]), 2)


def window_plan(finished_when_submitted: int, total: int, window: int, windows: int) -> list[tuple[int, int]]:
    """(start, size) of up to `windows` consecutive windows of `window` items, after WARM_UP more items than
    had finished when the last batch was accepted, and before the backlog's TAIL. A backlog too small for
    one whole window gets one shorter window (at least a quarter of `window`)."""
    start = finished_when_submitted + WARM_UP
    room = total - TAIL - start
    if room < window // 4:
        raise ValueError(f"{total} items leave no window after {start} (warm-up) and {TAIL} (tail)")
    if room < window:
        return [(start, room)]
    return [(start + index * window, window) for index in range(min(windows, room // window))]


def drain_ratio(large_rate: float, small_rates: Sequence[float]) -> float:
    """The large backlog's rate over the median of the small backlog's rates (measured around it)."""
    if not small_rates:
        raise ValueError("no small-backlog rate")
    return round(large_rate / statistics.median(small_rates), 3)


# --- the stack --------------------------------------------------------------------------------------


@dataclass
class Organization:
    name: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass
class Phase:
    """One backlog: its jobs and the (seconds, finished items) samples of their counters."""

    name: str
    job_ids: set[str] = field(default_factory=set)
    owners: dict[str, Organization] = field(default_factory=dict)  # job id → the organisation that owns it
    samples: list[tuple[float, int]] = field(default_factory=list)
    submitted_at: float = 0.0  # when the last batch was accepted
    finished_when_submitted: int = 0


class Drain:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.organizations: list[Organization] = []
        self.other: Organization | None = None
        self._batches = 0

    def start(self) -> None:
        self.bench.start()
        stack = self.bench.stack
        for name in [f"drain-{index}" for index in range(ORGANIZATIONS)] + ["other"]:
            client = stack.create_client(name)
            organization = Organization(name, stack.token(client["client_id"], ttl=86400))
            if name == "other":
                self.other = organization
            else:
                self.organizations.append(organization)

    def stub(self) -> import_service_pb2_grpc.ImportServiceStub:
        return self.bench.stub()

    def submit(self, organization: Organization, urls: Sequence[str]) -> tuple[str, float]:
        """(job id, submit wall time), through the edge as a REST caller does."""
        self._batches += 1
        body = {"systemName": "drain", "images": [
            {"url": url, "id": f"d{self._batches}-{index}", "fileName": f"item-{index}"}
            for index, url in enumerate(urls)]}
        wall = time.time()
        response = self.bench.stack.request("POST", "/api/v1/import/images", token=organization.token,
                                            body=body, timeout=120)
        if response.status != 200:
            raise RuntimeError(f"submit answered {response.status}: {response.body[:300]!r}")
        return str(response.json()["id"]), wall

    async def finished(self, phase: Phase) -> int:
        count = 0
        for organization in self.organizations:
            request = import_service_pb2.ListImportJobsRequest(
                page_size=200, view=import_service_pb2.IMPORT_JOB_VIEW_BASIC)
            while True:
                response = await self.stub().ListImportJobs(request, metadata=organization.metadata)
                count += finished_items(response.import_jobs, phase.job_ids)
                if not response.next_page_token:
                    break
                request.page_token = response.next_page_token
        return count

    async def sample_until(self, phase: Phase, items: int, deadline_seconds: float = 1800.0) -> None:
        deadline = time.perf_counter() + deadline_seconds
        while time.perf_counter() < deadline:
            count = await self.finished(phase)
            phase.samples.append((time.perf_counter(), count))
            if count >= items:
                return
            await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"{phase.name}: fewer than {items} items finished in {deadline_seconds} s")

    async def submit_backlog(self, phase: Phase, total: int) -> float:
        """Submits `total` dead links; answers the seconds it took. Samples keep being taken meanwhile."""
        started = time.perf_counter()
        for index, (org, size) in enumerate(batch_sizes(total, BATCH, len(self.organizations))):
            urls = [self.bench.origin.url(f"/gone/{phase.name}/{index}/{item}") for item in range(size)]
            job_id, _wall = await asyncio.to_thread(self.submit, self.organizations[org], urls)
            phase.job_ids.add(job_id)
            phase.owners[job_id] = self.organizations[org]
            if index % 10 == 9:
                phase.samples.append((time.perf_counter(), await self.finished(phase)))
                say(f"  {phase.name}: {(index + 1) * BATCH:,} submitted, {phase.samples[-1][1]:,} finished")
        phase.submitted_at = time.perf_counter()
        phase.finished_when_submitted = await self.finished(phase)
        phase.samples.append((phase.submitted_at, phase.finished_when_submitted))
        return time.perf_counter() - started

    async def drain_rates(self, name: str, total: int, windows: int) -> tuple[list[float], Phase, float]:
        """(items/s of each window, the phase, seconds to submit the backlog)."""
        phase = Phase(name)
        submit_seconds = await self.submit_backlog(phase, total)
        plan = window_plan(phase.finished_when_submitted, total, WINDOW, windows)
        last_start, last_size = plan[-1]
        await self.sample_until(phase, last_start + last_size + TAIL // 2)
        return [window_rate(phase.samples, start, size) for start, size in plan], phase, submit_seconds

    async def small_rates(self, label: str) -> list[float]:
        rates = []
        for index in range(SMALL_ROUNDS):
            (rate,), phase, _ = await self.drain_rates(f"small-{label}-{index}", SMALL_BACKLOG, 1)
            await self.sample_until(phase, SMALL_BACKLOG)  # drained before the next backlog is submitted
            rates.append(rate)
        return rates

    async def single_image_seconds(self, png: bytes, label: str) -> float:
        """The other organisation's one small PNG: submit → its job's `job_finished` committed."""
        assert self.other is not None
        url = self.bench.origin.serve(f"/single/{label}", png, Content_Type="image/png")
        job_id, wall = await asyncio.to_thread(self.submit, self.other, [url])
        stream = self.stub().WatchImportJob(
            import_service_pb2.WatchImportJobRequest(id=job_id, after_sequence=0),
            metadata=self.other.metadata, timeout=300)
        try:
            async for event in stream:
                if event.WhichOneof("event") == "job_finished":
                    return round(_timestamp(event.create_time) - wall, 3)
        finally:
            stream.cancel()
        raise RuntimeError(f"the single image's job {job_id} ended without job_finished")

    async def cancel(self, phase: Phase) -> float:
        """Cancels every job of the phase (POST /api/v1/import/jobs/{id}:cancel); answers the seconds."""
        started = time.perf_counter()
        for job_id, organization in phase.owners.items():
            response = await asyncio.to_thread(
                self.bench.stack.request, "POST", f"/api/v1/import/jobs/{job_id}:cancel",
                token=organization.token, body={}, timeout=120)
            if response.status not in (200, 409):  # 409: the job had already finished
                raise RuntimeError(f"cancel answered {response.status}: {response.body[:300]!r}")
        return round(time.perf_counter() - started, 1)


async def _figures(drain: Drain, large: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    pngs = small_pngs(3)
    say("warm-up: the other organisation's single image on an idle stack")
    figures["other_org_single_image_idle_s"] = await drain.single_image_seconds(pngs[0], "idle")
    say(f"  {figures['other_org_single_image_idle_s']} s")

    say(f"{SMALL_BACKLOG:,}-item backlog ({ORGANIZATIONS} organisations), {SMALL_ROUNDS} times")
    small_before = await drain.small_rates("before")
    say(f"  {small_before} items/s")

    say(f"{large:,}-item backlog ({large // BATCH} batches of {BATCH:,}, {ORGANIZATIONS} organisations)")
    large_rates, large_phase, submit_seconds = await drain.drain_rates("large", large, LARGE_WINDOWS)
    large_rate = statistics.median(large_rates)
    figures["backlog_submit_s"] = round(submit_seconds, 1)
    figures["backlog_finished_while_submitting"] = large_phase.finished_when_submitted
    figures["drain_items_per_s_while_submitting"] = round(large_phase.finished_when_submitted / submit_seconds, 2)
    say(f"  {large_rates} items/s (submitted in {submit_seconds:.1f} s, "
        f"{large_phase.finished_when_submitted:,} finished meanwhile)")

    say("the other organisation's single image while the large backlog is pending")
    figures["other_org_single_image_s"] = await drain.single_image_seconds(pngs[1], "loaded")
    pending = large - await drain.finished(large_phase)
    figures["backlog_pending_at_single_image"] = pending
    say(f"  {figures['other_org_single_image_s']} s with {pending:,} pending")

    say("cancelling the large backlog's jobs")
    figures["backlog_cancel_s"] = await drain.cancel(large_phase)
    say(f"  {figures['backlog_cancel_s']} s")

    say(f"{SMALL_BACKLOG:,}-item backlog again, {SMALL_ROUNDS} times (the load of a shared machine drifts)")
    small_after = await drain.small_rates("after")
    say(f"  {small_after} items/s")

    small = small_before + small_after
    figures["drain_items_per_s_1k"] = round(statistics.median(small), 2)
    figures["drain_items_per_s_1k_rounds"] = small
    figures[f"drain_items_per_s_{large // 1000}k"] = round(large_rate, 2)
    figures[f"drain_items_per_s_{large // 1000}k_windows"] = large_rates
    figures["backlog_drain_ratio"] = drain_ratio(large_rate, small)
    say(f"backlog_drain_ratio {figures['backlog_drain_ratio']} (target ≥ {TARGET_RATIO})")
    await drain.bench.close()
    return figures


def run(quick: bool) -> dict[str, Any]:
    large = QUICK_LARGE_BACKLOG if quick else LARGE_BACKLOG
    started = time.perf_counter()
    results: dict[str, Any] = {
        "drain_backlog_items": large, "drain_organizations": ORGANIZATIONS, "drain_window_items": WINDOW,
        "drain_load_average_at_start": round(os.getloadavg()[0], 2),
        "drain_items": "dead links (404 from a local origin): claim, fetch, finish; no pixel work",
    }
    if quick:
        results["drain_note"] = (f"QUICK: large backlog of {QUICK_LARGE_BACKLOG:,} items, not "
                                 f"{LARGE_BACKLOG:,}; backlog_drain_ratio compares it with 1,000")
    with tempfile.TemporaryDirectory(prefix="pixport-drain-") as data_dir:
        drain = Drain(Bench(Path(data_dir)))
        say("starting the stack (pixport up on free ports)")
        drain.start()
        try:
            results.update(asyncio.run(_figures(drain, large)))
        finally:
            code = drain.bench.stop()
            if code != 0:
                say(f"the stack exited with {code}; its log: {drain.bench.stack.log}")
    results["drain_load_average_at_end"] = round(os.getloadavg()[0], 2)
    results["drain_bench_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_LARGE_BACKLOG:,}-item backlog")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
