"""End-to-end measurements against a running stack: imports, events, edge vs gRPC, submits, memory.

Every end-to-end duration runs from just before the batch is submitted (this process's clock) to the
`create_time` of the job's `job_finished` event (PostgreSQL's clock, the same machine's), read from a
WatchImportJob stream, so the end of a job is exact without polling it."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from pixport.v1 import import_job_pb2, import_service_pb2, import_service_pb2_grpc

from bench.measure import CpuWatch, latency_summary, percentile, processes_named, rate, tree_rss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.origin import Origin
from support.stack import Stack


@dataclass
class JobRun:
    job_id: str
    images: int
    seconds: float  # submit → job_finished committed
    submit_seconds: float
    event_latencies: list[float] = field(default_factory=list)  # item_finished committed → received here
    counts: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)  # CPU ms per item by process role, machine busy share

    @property
    def per_second(self) -> float:
        return rate(self.images, self.seconds)


_UNFINISHED = (import_job_pb2.ImportItem.STATUS_UNSPECIFIED, import_job_pb2.ImportItem.pending)


def _timestamp(value: Any) -> float:
    return float(value.seconds) + float(value.nanos) / 1e9


class Bench:
    """One stack, one origin, one organisation, and clients for REST (through Envoy) and gRPC."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.stack = Stack(data_dir, extra_env)
        self.origin = Origin()
        # A worker closing a kept-alive connection is not news: keep the progress output readable.
        self.origin._server.handle_error = lambda *_args: None  # type: ignore[method-assign]
        self.token = ""
        self.channel: grpc.aio.Channel | None = None
        self._batches = 0

    def start(self) -> None:
        self.stack.start()
        client = self.stack.create_client("bench")
        self.token = self.stack.token(client["client_id"], ttl=86400)

    def stop(self) -> int:
        self.origin.close()
        return self.stack.stop()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def stub(self) -> import_service_pb2_grpc.ImportServiceStub:
        if self.channel is None:
            self.channel = grpc.aio.insecure_channel(self.stack.grpc_target)
        return import_service_pb2_grpc.ImportServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close(None)
            self.channel = None

    def serve(self, prefix: str, blobs: Sequence[bytes], content_type: str) -> list[str]:
        return [self.origin.serve(f"/{prefix}/{index}", data, Content_Type=content_type)
                for index, data in enumerate(blobs)]

    def batch(self, urls: Sequence[str]) -> dict[str, Any]:
        self._batches += 1
        return {"systemName": "bench", "images": [
            {"url": url, "id": f"b{self._batches}-{index}", "fileName": f"image-{index}"}
            for index, url in enumerate(urls)]}

    def submit(self, body: dict[str, Any]) -> tuple[str, float, float]:
        """(job id, submit wall time, seconds the submit took), through the edge as a REST caller does."""
        wall, started = time.time(), time.perf_counter()
        response = self.stack.request("POST", "/api/v1/import/images", token=self.token, body=body, timeout=120)
        took = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"submit answered {response.status}: {response.body[:300]!r}")
        return str(response.json()["id"]), wall, took

    async def run_job(self, urls: Sequence[str], deadline_seconds: float = 900.0) -> JobRun:
        """Submit `urls` as one batch and follow it to its end on a WatchImportJob stream."""
        assert self.stack.process is not None
        watch = CpuWatch(self.stack.process.pid, os.getpid())
        watch.start()
        job_id, wall, took = self.submit(self.batch(urls))
        run = JobRun(job_id, len(urls), 0.0, took)
        stream = self.stub().WatchImportJob(
            import_service_pb2.WatchImportJobRequest(id=job_id, after_sequence=0), metadata=self.metadata,
            timeout=deadline_seconds,
        )
        live_after = None
        async for event in stream:
            received = time.time()
            kind = event.WhichOneof("event")
            if kind == "snapshot":
                live_after = event.sequence  # later events are sent as they are committed
                for image in event.snapshot.images:  # those that finished before the stream began
                    if image.status not in _UNFINISHED:
                        status = import_job_pb2.ImportItem.Status.Name(image.status)
                        run.counts[status] = run.counts.get(status, 0) + 1
            elif kind == "item_finished":
                status = import_job_pb2.ImportItem.Status.Name(event.item_finished.status)
                run.counts[status] = run.counts.get(status, 0) + 1
                if live_after is not None and event.sequence > live_after:
                    run.event_latencies.append(max(0.0, received - _timestamp(event.create_time)))
            elif kind == "job_finished":
                run.seconds = _timestamp(event.create_time) - wall
                run.cpu = watch.per_item(len(urls))
                break
        stream.cancel()
        return run

    async def edge_vs_grpc(self, job_id: str, requests: int, rounds: int, concurrency: int) -> dict[str, Any]:
        """GetImportJob through Envoy (REST) and direct (gRPC), same concurrency, rounds interleaved."""
        edge_times: list[float] = []
        grpc_times: list[float] = []
        ratios: list[float] = []
        url = f"http://127.0.0.1:{self.stack.http_port}/api/v1/import/jobs/{job_id}"
        headers = {"Authorization": f"Bearer {self.token}"}
        stub = self.stub()
        request = import_service_pb2.GetImportJobRequest(id=job_id)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def edge_call() -> None:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"edge GetImportJob answered {response.status}")

            async def grpc_call() -> None:
                await stub.GetImportJob(request, metadata=self.metadata)

            await _load(edge_call, concurrency * 2, concurrency, [])  # warm-up: connections, caches
            await _load(grpc_call, concurrency * 2, concurrency, [])
            for _ in range(rounds):
                edge_seconds = await _load(edge_call, requests, concurrency, edge_times)
                grpc_seconds = await _load(grpc_call, requests, concurrency, grpc_times)
                ratios.append(grpc_seconds / edge_seconds)  # = edge throughput / gRPC throughput
        return {
            "ratio": round(percentile(ratios, 0.5), 3), "rounds": [round(r, 3) for r in ratios],
            "concurrency": concurrency, "requests_per_round": requests,
            "edge": latency_summary(edge_times), "grpc": latency_summary(grpc_times),
        }

    async def submit_latencies(self, batches: int, size: int = 1000) -> list[float]:
        """Seconds to accept each of `batches` batches of `size` images (each cancelled at once after)."""
        seconds = []
        for _ in range(batches):
            urls = [self.origin.url(f"/never/{self._batches}/{index}") for index in range(size)]
            job_id, _wall, took = await asyncio.to_thread(self.submit, self.batch(urls))
            seconds.append(took)
            await self.stub().CancelImportJob(import_service_pb2.CancelImportJobRequest(id=job_id),
                                              metadata=self.metadata)
        return seconds

    def worker_rss(self) -> int:
        assert self.stack.process is not None
        return tree_rss(processes_named(self.stack.process.pid, "pixport.cli worker"))


async def _load(call: Any, requests: int, concurrency: int, times: list[float]) -> float:
    """`requests` calls from `concurrency` callers; each call's duration appended to `times`. Wall seconds."""
    remaining = requests

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            times.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started

