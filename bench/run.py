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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import pixel_bench
from bench.measure import file_create_us, latency_summary, limit_with_cpu
from bench.photos import photos, small_pngs
from bench.system import Bench

MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    photos: int  # distinct 12-MP JPEGs imported in each round (and analysed for the limit after it)
    photo_rounds: int  # imports of `photos` new photos, each between two measurements of the limit
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


FULL = Plan(photos=200, photo_rounds=3, bases=4, speedup_images=4, speedup_rounds=5, rss_images=5000, dead_links=1000,
            small_images=1000, event_images=300, edge_requests=500, edge_rounds=11, submits=20)
QUICK = Plan(photos=100, photo_rounds=3, bases=2, speedup_images=2, speedup_rounds=2, rss_images=100, dead_links=1000,
             small_images=1000, event_images=200, edge_requests=150, edge_rounds=7, submits=5)
# Photos imported before the measured rounds: one per worker slot (PIXPORT_WORKER_CONCURRENCY's default),
# so the connections, threads and prepared statements every round uses exist before the first is timed.
WARM_UP = 32
OVERHEAD = frozenset({"dead_links", "small_images", "events"})
ONLY = OVERHEAD | {"photos"}
EDGE_CONCURRENCY = 8
FS_QUIET_US = 60.0  # creating one file (and every 16th a directory): ~17 us quiet, 150-400 us unsettled
SETTLE_SECONDS = 150.0  # without the sync, a deletion of ~20,000 files took 90-150 s to settle here
SETTLE_SECONDS_QUICK = 30.0  # QUICK keeps to its 3 minutes and says what it found
SETTLE_STEP_SECONDS = 6.0  # ext4 skips inodes freed in the last 5 s even once written back


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


def round_ratios(imports: Sequence[float], limits: Sequence[float]) -> list[float]:
    """Each import's rate over the mean of the limits measured just before and just after it (on a shared
    machine the speed drifts by 10-20 % within minutes: only a limit taken beside an import compares)."""
    if len(limits) != len(imports) + 1:
        raise ValueError(f"{len(imports)} imports need {len(imports) + 1} limits around them, not {len(limits)}")
    return [round(rate / ((limits[index] + limits[index + 1]) / 2), 3) for index, rate in enumerate(imports)]


def median_round(ratios: Sequence[float]) -> int:
    """The index of the round whose ratio is the median (the lower middle one for an even count)."""
    order = sorted(range(len(ratios)), key=lambda index: ratios[index])
    return order[(len(order) - 1) // 2]


async def photo_figures(
    bench: Bench, jpegs: list[bytes], limit_before: tuple[float, float], plan: Plan
) -> dict[str, Any]:
    """The photos imported end to end in `plan.photo_rounds` rounds of `plan.photos` new ones, the bare pixel
    limit measured before the first and after each (`limit_before`: images/s and CPU ms per analyse(), from
    `limit_with_cpu`, on the first round's photos). `import_vs_limit` is the median round's ratio."""
    warm_up = jpegs[:WARM_UP]
    say(f"warm-up import of {len(warm_up)} photos (pixel processes start, connections open, caches fill)")
    await bench.run_job(bench.serve("warm", warm_up, "image/jpeg"))
    processes = pixel_processes()
    limits, bare_cpu = [limit_before[0]], [limit_before[1]]
    rounds: list[dict[str, Any]] = []
    for number in range(plan.photo_rounds):
        photos_of_round = round_photos(jpegs, plan, number)
        say(f"round {number + 1}/{plan.photo_rounds}: importing {len(photos_of_round)} distinct 12-MP JPEGs end to end")
        run = await bench.run_job(bench.serve(round_prefix(number), photos_of_round, "image/jpeg"))
        # The limit again, right after, with the stack idle, on the photos just imported.
        limit_after, cpu_after = await asyncio.to_thread(limit_with_cpu, photos_of_round, processes)
        limits.append(limit_after)
        bare_cpu.append(cpu_after)
        ratio = round_ratios([run.per_second], limits[-2:])[0]
        rounds.append({
            "import_images_per_s": run.per_second, "import_vs_limit": ratio, "limit_before": limits[-2],
            "limit_after": limit_after, "counts": run.counts, "cpu": run.cpu,
            "explained": explain_ratio(run.cpu, round((bare_cpu[-2] + cpu_after) / 2, 2)),
        })
        say(f"  {run.per_second} images/s ({ratio} of the limit: {limits[-2]} before, {limit_after} after), "
            f"{run.counts}")
    middle = rounds[median_round([entry["import_vs_limit"] for entry in rounds])]
    figures: dict[str, Any] = {
        "import_vs_limit": middle["import_vs_limit"],
        "import_images_per_s": middle["import_images_per_s"],
        "limit_images_per_s_after_import": middle["limit_after"],
        "import_counts": middle["counts"],
        "import_cpu": middle["cpu"],
        "import_vs_limit_explained": middle["explained"],
        "import_rounds": [{
            **{key: entry[key] for key in ("import_images_per_s", "import_vs_limit", "limit_before", "limit_after")},
            "cpu_ms_per_item": entry["cpu"].get("cpu_ms_per_item"), "explained": entry["explained"]["product"],
        } for entry in rounds],
        "limits_images_per_s": limits,
    }
    say(f"  import_vs_limit {figures['import_vs_limit']} (median of rounds "
        f"{[entry['import_vs_limit'] for entry in rounds]})")
    return figures


def first_limit(jpegs: Sequence[bytes], plan: Plan) -> tuple[float, float]:
    """The bare limit before the stack starts, on the first round's photos (`limit_with_cpu`)."""
    processes = pixel_processes()
    say(f"the limit: analyse() in a bare pool of {processes} processes, {plan.photos} photos")
    limit = limit_with_cpu(round_photos(jpegs, plan, 0), processes)
    say(f"  {limit[0]} images/s")
    return limit


def round_prefix(number: int) -> str:
    """The origin's path prefix of round `number`'s photos."""
    return f"photos{number}"


def round_photos(jpegs: Sequence[bytes], plan: Plan, number: int) -> list[bytes]:
    """The distinct photos of round `number` (after the warm-up ones)."""
    start = WARM_UP + number * plan.photos
    return list(jpegs[start:start + plan.photos])


async def system_figures(
    bench: Bench, plan: Plan, jpegs: list[bytes], limit: tuple[float, float]
) -> dict[str, Any]:
    figures = await photo_figures(bench, jpegs, limit, plan)
    measured = round_photos(jpegs, plan, 0)

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
        # The first round's photos again, as the origin serves them already.
        urls = [bench.origin.url(f"/{round_prefix(0)}/{(done + index) % len(measured)}") for index in range(size)]
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


def settle_file_system(
    probe: Path, limit_s: float = SETTLE_SECONDS, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic, sync: Callable[[], None] = os.sync,
) -> dict[str, Any]:
    """Wait (up to `limit_s`) until creating a file costs what it costs on a quiet file system.

    ext4 without a journal (this machine's root) checks every free inode it meets against its deletion
    time and walks past those freed in the last 5 s, or in the last 5 minutes while their inode-table
    block is dirty (new inodes in the same block make it dirty again): after another program deleted a
    large tree (a test suite's temp dirs, a previous bench's data dir, pip's build dirs) every file and
    directory pixport creates costs 5-40 times more (100-800 us instead of ~20) for up to five minutes.
    That is the file system's state, not pixport's cost: the bench writes dirty blocks back (`sync`),
    waits, probes again, and reports what it found and how long it waited."""
    figures = {"fs_create_us": file_create_us(probe / "0"), "fs_settle_wait_s": 0.0}
    started = clock()
    while figures["fs_create_us"] > FS_QUIET_US and clock() - started < limit_s:
        if figures["fs_settle_wait_s"] == 0.0:
            say(f"creating a file costs {figures['fs_create_us']} us (quiet: under {FS_QUIET_US:g}): the file "
                f"system is still reclaiming recently deleted inodes; syncing and waiting up to {limit_s:g} s")
        sync()
        sleep(SETTLE_STEP_SECONDS)
        figures["fs_settle_wait_s"] = round(clock() - started, 1)
        figures["fs_create_us"] = file_create_us(probe / str(figures["fs_settle_wait_s"]))
    if figures["fs_settle_wait_s"]:
        say(f"  {figures['fs_create_us']} us per file after {figures['fs_settle_wait_s']} s")
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
    jpegs = photos(plan.photo_rounds * plan.photos + WARM_UP, plan.bases, say=say)

    say(f"pixel pipeline vs naive Pillow ({plan.speedup_images} photos, best of {plan.speedup_rounds})")
    results.update(pipeline_figures(plan, jpegs))
    say(f"  {results['pipeline_speedup_vs_naive']}x")

    with tempfile.TemporaryDirectory(prefix="pixport-bench-") as data_dir:
        results.update(settle_file_system(Path(data_dir) / "probe", SETTLE_SECONDS_QUICK if quick else SETTLE_SECONDS))
        limit = first_limit(jpegs, plan)
        results["limit_images_per_s"] = limit[0]
        bench = Bench(Path(data_dir) / "stack")
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
                           f"{plan.photo_rounds} rounds of {plan.photos} photos; fewer rounds elsewhere")
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    return results


def run_only(quick: bool, only: frozenset[str], rounds: int) -> dict[str, Any]:
    """Only some figures on one stack: the photos' import against the limit once (its photos are distinct
    only once), then the per-item overhead figures `rounds` times."""
    plan = QUICK if quick else FULL
    results: dict[str, Any] = {"quick": quick, "only": sorted(only), "rounds": []}
    jpegs: list[bytes] = []
    limit = (0.0, 0.0)
    with tempfile.TemporaryDirectory(prefix="pixport-bench-") as data_dir:
        results.update(settle_file_system(Path(data_dir) / "probe", SETTLE_SECONDS_QUICK if quick else SETTLE_SECONDS))
        if "photos" in only:
            jpegs = photos(plan.photo_rounds * plan.photos + WARM_UP, plan.bases, say=say)
            limit = first_limit(jpegs, plan)
            results["limit_images_per_s"] = limit[0]
        bench = Bench(Path(data_dir) / "stack")
        say("starting the stack (pixport up on free ports)")
        bench.start()
        try:
            async def measure() -> None:
                if jpegs:
                    results.update(await photo_figures(bench, jpegs, limit, plan))
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
