"""The bench's measuring functions, small and importable, so a unit test runs each on a tiny input."""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pixport.imaging import Limits, analyse

PROC = Path("/proc")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (`share` in [0, 1]) of a non-empty sample."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p99 in milliseconds of a sample of durations in seconds."""
    return {"count": len(seconds), "p50_ms": round(percentile(seconds, 0.5) * 1000, 2),
            "p99_ms": round(percentile(seconds, 0.99) * 1000, 2)}


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else math.inf


def _analysed_bytes(data: bytes) -> int:
    result = analyse(data, Limits())
    return result.byte_size + sum(len(rendition.data) for rendition in result.renditions)


def limit_images_per_s(photos: Sequence[bytes], processes: int) -> float:
    """analyse() on every photo in a bare process pool of `processes`: the pixel limit of the machine.

    The results cross back to this process (as the pool's replies do), but nothing is stored or recorded.
    """
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        list(pool.map(_analysed_bytes, photos[:processes]))  # warm-up: children started, imports done
        started = time.perf_counter()
        list(pool.map(_analysed_bytes, photos))
        return rate(len(photos), time.perf_counter() - started)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    pending, seen = [pid], []
    while pending:
        current = pending.pop()
        seen.append(current)
        pending += children(current)
    return seen


def rss_bytes(pids: Iterable[int]) -> int:
    """Summed resident set size (VmRSS) of the processes still alive."""
    total = 0
    for pid in pids:
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_named(root: int, fragment: str) -> list[int]:
    """Descendants of `root` whose command line contains `fragment`."""
    return [pid for pid in descendants(root) if pid != root and fragment in command_line(pid)]


def tree_rss(root_pids: Iterable[int]) -> int:
    """RSS of each process and all its descendants (a worker, its fork server and its pixel processes)."""
    return rss_bytes({pid for root in root_pids for pid in descendants(root)})


def self_pid() -> int:
    return os.getpid()
