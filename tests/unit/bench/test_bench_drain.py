"""bench/drain.py's measuring helpers on tiny inputs (the drain itself needs a stack and is not in `make test`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from bench import drain  # noqa: E402


@dataclass
class _Overview:
    total: int
    pending: int


@dataclass
class _Job:
    id: str
    overview: _Overview


def test_finished_items_counts_only_the_phase_jobs_from_their_counters() -> None:
    jobs = [_Job("a", _Overview(1000, 400)), _Job("b", _Overview(1000, 1000)), _Job("old", _Overview(200, 0))]
    assert drain.finished_items(jobs, {"a", "b"}) == 600
    assert drain.finished_items(jobs, {"old"}) == 200
    assert drain.finished_items(jobs, set()) == 0


def test_batch_sizes_take_organisations_in_turn_and_keep_the_total() -> None:
    assert drain.batch_sizes(2500, 1000, 2) == [(0, 1000), (1, 1000), (0, 500)]
    assert drain.batch_sizes(1000, 200, 5) == [(0, 200), (1, 200), (2, 200), (3, 200), (4, 200)]
    sizes = drain.batch_sizes(100_000, 1000, 5)
    assert len(sizes) == 100 and sum(size for _, size in sizes) == 100_000
    assert [org for org, _ in sizes].count(4) == 20


def test_window_rate_runs_from_the_first_sample_past_the_start_to_the_first_past_its_end() -> None:
    samples = [(0.0, 0), (1.0, 50), (2.0, 120), (3.0, 200), (4.0, 310), (5.0, 400)]
    # First sample with ≥ 100 finished is (2.0, 120); first with ≥ 100 + 150 is (4.0, 310): 190 items in 2 s.
    assert drain.window_rate(samples, 100, 150) == 95.0
    assert drain.window_rate(samples, 0, 400) == 80.0
    # A start overshot by a coarse sample does not push the end beyond what was sampled.
    assert drain.window_rate(samples, 101, 299) == 93.33  # (2.0, 120) to (5.0, 400)
    with pytest.raises(ValueError, match="never 500 finished"):
        drain.window_rate(samples, 500, 10)
    with pytest.raises(ValueError, match="never 500 finished items after"):
        drain.window_rate(samples, 100, 400)
    with pytest.raises(ValueError, match="no duration"):
        drain.window_rate([(0.0, 0), (1.0, 40)], 5, 20)  # one sample past both the start and the end
    with pytest.raises(ValueError, match="no duration"):
        drain.window_rate([(1.0, 10), (2.0, 10)], 10, 0)


def test_drain_ratio_compares_with_the_median_of_the_small_backlog_rates() -> None:
    assert drain.drain_ratio(70.0, [90.0, 100.0, 300.0]) == 0.7
    assert drain.drain_ratio(30.0, [40.0]) == 0.75
    with pytest.raises(ValueError):
        drain.drain_ratio(1.0, [])


def test_window_plan_starts_after_the_warm_up_and_stops_before_the_tail() -> None:
    warm, tail = drain.WARM_UP, drain.TAIL
    assert drain.window_plan(40, 100_000, 800, 3) == [(40 + warm, 800), (40 + warm + 800, 800),
                                                      (40 + warm + 1600, 800)]
    # A 1,000-item backlog holds one 800-item window when few finished during the submit, a shorter one else.
    assert drain.window_plan(0, 1000, 800, 1) == [(warm, 800)]
    assert drain.window_plan(300, 1000, 800, 1) == [(300 + warm, 1000 - tail - 300 - warm)]
    assert drain.window_plan(0, 2000, 800, 5) == [(warm, 800), (warm + 800, 800)]
    with pytest.raises(ValueError, match="no window"):
        drain.window_plan(800, 1000, 800, 1)
