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


def _analysed_cpu_seconds(data: bytes) -> float:
    """CPU seconds one analyse() took in its pool process (its bytes still cross back, as in the pool)."""
    started = time.process_time()
    _analysed_bytes(data)
    return time.process_time() - started


def limit_with_cpu(photos: Sequence[bytes], processes: int) -> tuple[float, float]:
    """analyse() on every photo in a bare process pool of `processes`: the pixel limit of the machine
    (images/s), and the mean CPU milliseconds one analyse() took there.

    The results cross back to this process (as the pool's replies do), but nothing is stored or recorded.
    """
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        list(pool.map(_analysed_bytes, photos[:processes]))  # warm-up: children started, imports done
        started = time.perf_counter()
        cpu = list(pool.map(_analysed_cpu_seconds, photos))
        images_per_s = rate(len(photos), time.perf_counter() - started)
    return images_per_s, round(1000 * sum(cpu) / len(cpu), 2)


def file_create_us(directory: Path, files: int = 256) -> float:
    """Microseconds to create one empty file in a new directory, every 16th file in a new subdirectory
    (the shape of a blob store filling up). The files are left for the caller's cleanup: deleting them
    here would make the next probe slower (see bench.run.settle_file_system)."""
    directory.mkdir(parents=True)
    started = time.perf_counter()
    for index in range(files):
        folder = directory / f"{index // 16:02x}"
        if index % 16 == 0:
            folder.mkdir()
        os.close(os.open(folder / f"{index:04x}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return round((time.perf_counter() - started) / files * 1e6, 1)


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


# Which process does what, by its command line (the first fragment that matches names its role). A pixel
# process is a child of the worker's fork server; those it has reaped (recycled after their tasks) are in
# the fork server's own `cutime`, so their CPU is not lost when they exit during a measurement.
ROLES = (("pixels", "multiprocessing.forkserver"), ("worker", "pixport.cli worker"),
         ("server", "pixport.cli serve"), ("envoy", "envoy"), ("postgres", "postgres"))


def role_of(command: str) -> str:
    return next((role for role, fragment in ROLES if fragment in command), "other")


def cpu_seconds(pid: int, with_reaped_children: bool = True) -> float:
    """User + system CPU seconds of `pid` (and of the children it has waited for), 0 if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if with_reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds so far of `root`'s descendants (not `root` itself), summed by role."""
    totals: dict[str, float] = {}
    for pid in descendants(root):
        if pid != root:
            role = role_of(command_line(pid))
            totals[role] = totals.get(role, 0.0) + cpu_seconds(pid)
    return totals


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (from /proc/stat)."""
    values = [int(value) for value in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])  # guest time is already counted in user
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


class CpuWatch:
    """CPU milliseconds per item by role over one measured stretch, and how busy the machine was."""

    def __init__(self, stack_root: int, bench_pid: int) -> None:
        self._root, self._bench = stack_root, bench_pid
        self._roles: dict[str, float] = {}
        self._bench_start = 0.0
        self._machine = (0.0, 0.0)

    def start(self) -> None:
        self._roles = cpu_by_role(self._root)
        self._bench_start = cpu_seconds(self._bench, with_reaped_children=False)
        self._machine = machine_cpu_seconds()

    def per_item(self, items: int) -> dict[str, Any]:
        roles = cpu_by_role(self._root)
        spent = {role: roles.get(role, 0.0) - self._roles.get(role, 0.0) for role in roles}
        spent["bench"] = cpu_seconds(self._bench, with_reaped_children=False) - self._bench_start
        busy, total = (now - before for now, before in zip(machine_cpu_seconds(), self._machine, strict=True))
        per_item = {role: round(1000 * seconds / items, 2) for role, seconds in sorted(spent.items())}
        return {"cpu_ms_per_item": per_item, "cpu_ms_per_item_total": round(sum(per_item.values()), 2),
                "machine_busy_share": round(busy / total, 3) if total > 0 else 0.0}
