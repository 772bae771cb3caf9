"""`make bench [QUICK=1]`: every figure of the system in one run; progress first, ONE JSON object last.

    PYTHONPATH=server:. .venv/bin/python -m bench.run [--quick]

It generates its own photos (cached under build/bench), measures the pixel pipeline alone (against naive
Pillow, and in a bare process pool: the limit), then starts its own stack (`pixport up` on free ports, a
private data dir, a local origin) and measures imports end to end, dead links, small images, event latency,
the edge against direct gRPC, batch submits and the worker's memory, and stops everything it started.
docs/performance.md explains each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import pixel_bench
from bench.measure import latency_summary, limit_with_cpu
from bench.photos import photos, small_pngs
from bench.system import Bench

MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    photos: int  # distinct 12-MP JPEGs imported (and analysed for the limit)
    bases: int  # drawn photos the others are derived from
    speedup_images: int
    speedup_rounds: int
    rss_images: int  # imported after warm-up while the worker's memory is watched
    dead_links: int
    small_images: int
    event_images: int
    edge_requests: int  # per side and round
    edge_rounds: int
    submits: int  # 1,000-image batches accepted (and cancelled)


FULL = Plan(photos=200, bases=4, speedup_images=4, speedup_rounds=5, rss_images=5000, dead_links=1000,
            small_images=1000, event_images=300, edge_requests=500, edge_rounds=11, submits=20)
QUICK = Plan(photos=100, bases=2, speedup_images=2, speedup_rounds=2, rss_images=300, dead_links=1000,
             small_images=1000, event_images=200, edge_requests=150, edge_rounds=7, submits=5)
WARM_UP = 4
OVERHEAD = frozenset({"dead_links", "small_images", "events"})
ONLY = OVERHEAD | {"photos"}
EDGE_CONCURRENCY = 8


def pixel_processes() -> int:
    """The worker's pixel pool size (as `pixport up` chooses it): the bare limit runs a pool of the same."""
    return int(os.environ.get("PIXPORT_PIXEL_PROCESSES") or os.cpu_count() or 2)


_STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"bench [{time.perf_counter() - _STARTED:6.1f} s] {message}", flush=True)


def pipeline_figures(plan: Plan, jpegs: list[bytes]) -> dict[str, Any]:
    works: dict[str, Callable[[bytes], int]] = {
        "naive": pixel_bench.naive, "pipeline": pixel_bench.pipeline, "analyse": pixel_bench.full_analyse,
    }
    seconds = pixel_bench.per_image(works, jpegs[:plan.speedup_images], plan.speedup_rounds)
    return {
        "pipeline_speedup_vs_naive": round(seconds["naive"] / seconds["pipeline"], 2),
        "naive_s_per_image": round(seconds["naive"], 3), "pipeline_s_per_image": round(seconds["pipeline"], 3),
        "analyse_s_per_image": round(seconds["analyse"], 3),
    }


async def overhead_figures(
    bench: Bench, plan: Plan, only: frozenset[str] = OVERHEAD, round_: int = 0
) -> dict[str, Any]:
    """The per-item overhead figures: dead links, small images, event latency (`--only` picks some;
    each `round_` uses its own URLs and distinct images, so rounds on one stack measure the same work)."""
    figures: dict[str, Any] = {}
    if "dead_links" in only:
        say(f"{plan.dead_links} URLs answering 404")
        dead = await bench.run_job([bench.origin.url(f"/gone/{round_}-{index}") for index in range(plan.dead_links)])
        figures["dead_link_items_per_s"] = dead.per_second
        figures["dead_link_counts"] = dead.counts
        figures["dead_link_cpu"] = dead.cpu
        say(f"  {dead.per_second} items/s, {dead.counts}")

    pngs = small_pngs(plan.small_images + plan.event_images + 10, seed=round_)
    if "small_images" in only:
        say(f"{plan.small_images} distinct small PNGs (300x200)")
        small = await bench.run_job(bench.serve(f"small{round_}", pngs[:plan.small_images], "image/png"))
        figures["small_image_items_per_s"] = small.per_second
        figures["small_image_counts"] = small.counts
        figures["small_image_cpu"] = small.cpu
        say(f"  {small.per_second} images/s, {small.counts}")

    if "events" in only:
        say(f"event latency over {plan.event_images} small images (committed → received on a stream)")
        events = await bench.run_job(bench.serve(f"events{round_}", pngs[plan.small_images:-10], "image/png"))
        latency = latency_summary(events.event_latencies)
        figures["event_latency_p50_ms"], figures["event_latency_p99_ms"] = latency["p50_ms"], latency["p99_ms"]
        figures["event_latency_samples"] = latency["count"]
        say(f"  p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms ({latency['count']} events)")
    return figures


def explain_ratio(cpu: dict[str, Any], bare_cpu_ms: float) -> dict[str, float]:
    """The import's ratio to the limit as three factors of its CPU accounting: how busy the machine was,
    how much more CPU the same analyse() took inside the stack than in the bare pool (both cores shared),
    and the pixel processes' share of all the CPU an image cost. On a machine the bare pool keeps fully
    busy, their product is the ratio: what is not pixel work, or is pixel work made slower by sharing,
    is what the import gives up."""
    per_item = cpu["cpu_ms_per_item"]
    pixels, total = per_item.get("pixels", 0.0), cpu["cpu_ms_per_item_total"]
    factors = {
        "machine_busy_share": cpu["machine_busy_share"],
        "bare_vs_in_stack_pixel_cpu": round(bare_cpu_ms / pixels, 3) if pixels else 0.0,
        "pixel_share_of_cpu": round(pixels / total, 3) if total else 0.0,
        "bare_analyse_cpu_ms": bare_cpu_ms,
    }
    factors["product"] = round(factors["machine_busy_share"] * factors["bare_vs_in_stack_pixel_cpu"]
                               * factors["pixel_share_of_cpu"], 3)
    return factors


async def photo_figures(bench: Bench, jpegs: list[bytes], limit_before: tuple[float, float]) -> dict[str, Any]:
    """The photos imported end to end, against the bare pixel limit measured before and right after
    (`limit_before`: images/s and CPU ms per analyse(), from `limit_with_cpu`)."""
    figures: dict[str, Any] = {}
    limit, bare_cpu_before = limit_before
    warm_up, measured = jpegs[:WARM_UP], jpegs[WARM_UP:]
    say("warm-up import (pixel processes start, caches fill)")
    await bench.run_job(bench.serve("warm", warm_up, "image/jpeg"))

    say(f"importing {len(measured)} distinct 12-MP JPEGs end to end")
    run = await bench.run_job(bench.serve("photos", measured, "image/jpeg"))
    # The limit again, right after, with the stack idle: on a shared machine the load drifts, and the
    # ratio should compare the import with the limit measured under the same background.
    processes = pixel_processes()
    limit_after, bare_cpu_after = await asyncio.to_thread(limit_with_cpu, measured, processes)
    side_by_side = (limit + limit_after) / 2
    figures["limit_images_per_s_after_import"] = limit_after
    figures["import_images_per_s"] = run.per_second
    figures["import_vs_limit"] = round(run.per_second / side_by_side, 3)
    figures["import_counts"] = run.counts
    figures["import_cpu"] = run.cpu
    figures["import_vs_limit_explained"] = explain_ratio(run.cpu, round((bare_cpu_before + bare_cpu_after) / 2, 2))
    say(f"  {run.per_second} images/s ({figures['import_vs_limit']} of the limit: {limit} before, "
        f"{limit_after} after), {run.counts}")
    return figures


async def system_figures(
    bench: Bench, plan: Plan, jpegs: list[bytes], limit: tuple[float, float]
) -> dict[str, Any]:
    figures = await photo_figures(bench, jpegs, limit)
    measured = jpegs[WARM_UP:]

    figures.update(await overhead_figures(bench, plan))

    say("GetImportJob through Envoy vs direct gRPC (a finished 10-image job)")
    pngs = small_pngs(plan.small_images + plan.event_images + 10)
    status_job = await bench.run_job(bench.serve("status", pngs[-10:], "image/png"))
    edge = await bench.edge_vs_grpc(status_job.job_id, plan.edge_requests, plan.edge_rounds, EDGE_CONCURRENCY)
    figures["edge_vs_grpc"] = edge
    say(f"  ratio {edge['ratio']} (rounds {edge['rounds']}); edge p50/p99 {edge['edge']['p50_ms']}/"
        f"{edge['edge']['p99_ms']} ms, gRPC {edge['grpc']['p50_ms']}/{edge['grpc']['p99_ms']} ms")

    say(f"accepting {plan.submits} batches of 1,000 images")
    submits = latency_summary(await bench.submit_latencies(plan.submits))
    figures["submit_1000_p99_ms"], figures["submit_1000_p50_ms"] = submits["p99_ms"], submits["p50_ms"]
    say(f"  p50 {submits['p50_ms']} ms, p99 {submits['p99_ms']} ms")

    say(f"worker memory over {plan.rss_images} more imported photos")
    before = bench.worker_rss()
    peak, done = before, 0
    while done < plan.rss_images:
        size = min(1000, plan.rss_images - done, len(measured) * 5)
        urls = [bench.origin.url(f"/photos/{(done + index) % len(measured)}") for index in range(size)]
        await bench.run_job(urls)
        done += size
        peak = max(peak, bench.worker_rss())
    after = bench.worker_rss()
    figures["worker_rss_growth_mb"] = round((after - before) / MB, 1)
    figures["worker_rss_mb"] = {"before": round(before / MB, 1), "after": round(after / MB, 1),
                                "peak": round(peak / MB, 1), "images": plan.rss_images}
    say(f"  {figures['worker_rss_growth_mb']} MB growth ({figures['worker_rss_mb']})")
    await bench.close()
    return figures


def scale_figures(quick: bool) -> dict[str, Any]:
    try:
        scale = importlib.import_module("bench.scale")
    except ModuleNotFoundError:
        return {"missing": "bench/scale.py is not there yet (archive-scale issue)"}
    result: dict[str, Any] = scale.run(quick)
    return result


def run(quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    started = time.perf_counter()
    processes = pixel_processes()
    results: dict[str, Any] = {"quick": quick, "plan": asdict(plan), "pixel_processes": processes}
    jpegs = photos(plan.photos + WARM_UP, plan.bases, say=say)

    say(f"pixel pipeline vs naive Pillow ({plan.speedup_images} photos, best of {plan.speedup_rounds})")
    results.update(pipeline_figures(plan, jpegs))
    say(f"  {results['pipeline_speedup_vs_naive']}x")

    say(f"the limit: analyse() in a bare pool of {processes} processes, {plan.photos} photos")
    limit = limit_with_cpu(jpegs[WARM_UP:], processes)
    results["limit_images_per_s"] = limit[0]
    say(f"  {limit[0]} images/s")

    with tempfile.TemporaryDirectory(prefix="pixport-bench-") as data_dir:
        bench = Bench(Path(data_dir))
        say("starting the stack (pixport up on free ports)")
        bench.start()
        try:
            results.update(asyncio.run(system_figures(bench, plan, jpegs, limit)))
        finally:
            code = bench.stop()
            if code != 0:
                say(f"the stack exited with {code}; its log: {bench.stack.log}")

    say("archive-scale figures (bench/scale.py)")
    results["scale"] = scale_figures(quick)
    say("drain through the stack: 1k vs 100k backlog, another organisation's image (bench/drain.py)")
    results.update(importlib.import_module("bench.drain").run(quick))
    if quick:
        results["note"] = (f"QUICK: worker memory over {plan.rss_images} images, not 5,000; "
                           f"{plan.photos} photos; fewer rounds")
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    return results


def run_only(quick: bool, only: frozenset[str], rounds: int) -> dict[str, Any]:
    """Only some figures on one stack: the photos' import against the limit once (its photos are distinct
    only once), then the per-item overhead figures `rounds` times."""
    plan = QUICK if quick else FULL
    results: dict[str, Any] = {"quick": quick, "only": sorted(only), "rounds": []}
    jpegs: list[bytes] = []
    limit = (0.0, 0.0)
    if "photos" in only:
        jpegs = photos(plan.photos + WARM_UP, plan.bases, say=say)
        processes = pixel_processes()
        say(f"the limit: analyse() in a bare pool of {processes} processes, {plan.photos} photos")
        limit = limit_with_cpu(jpegs[WARM_UP:], processes)
        results["limit_images_per_s"] = limit[0]
    with tempfile.TemporaryDirectory(prefix="pixport-bench-") as data_dir:
        bench = Bench(Path(data_dir))
        say("starting the stack (pixport up on free ports)")
        bench.start()
        try:
            async def measure() -> None:
                if jpegs:
                    results.update(await photo_figures(bench, jpegs, limit))
                else:
                    await bench.run_job(bench.serve("warm", small_pngs(4, seed=999), "image/png"))
                if only & OVERHEAD:
                    for round_ in range(rounds):
                        results["rounds"].append(await overhead_figures(bench, plan, only, round_))
                await bench.close()
            asyncio.run(measure())
        finally:
            bench.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds: under 3 minutes")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(sorted(ONLY))}: only those")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --only: measure the overhead figures this many times (photos once)")
    args = parser.parse_args()
    if args.only:
        only = frozenset(args.only.split(","))
        if not only <= ONLY:
            parser.error(f"--only takes {','.join(sorted(ONLY))}")
        print(json.dumps(run_only(args.quick, only, args.rounds), sort_keys=True), flush=True)
        return
    results = run(args.quick)
    print(json.dumps(results, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
