"""The bench's measuring code on tiny inputs, so that `make bench` cannot rot unnoticed (the bench itself
is not part of `make test`)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from bench import measure, photos, pixel_bench, run, system  # noqa: E402


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert measure.percentile(values, 0.5) == 50
    assert measure.percentile(values, 0.99) == 99
    assert measure.percentile([3.0], 0.99) == 3
    with pytest.raises(ValueError):
        measure.percentile([], 0.5)
    assert measure.latency_summary([0.001, 0.002, 0.010]) == {"count": 3, "p50_ms": 2.0, "p99_ms": 10.0}


def test_variants_differ_in_pixels_and_small_pngs_are_distinct() -> None:
    base = io.BytesIO()
    Image.new("RGB", (200, 150), (90, 120, 200)).save(base, "JPEG")
    one, two = photos.variant(base.getvalue(), 1), photos.variant(base.getvalue(), 2)
    with Image.open(io.BytesIO(one)) as a, Image.open(io.BytesIO(two)) as b:
        assert a.size == b.size == (200, 150) and a.tobytes() != b.tobytes()
    pngs = photos.small_pngs(5, 30, 20)
    assert len({hashlib.sha256(p).digest() for p in pngs}) == 5
    with Image.open(io.BytesIO(pngs[0])) as image:
        assert (image.format, image.size) == ("PNG", (30, 20))


def test_the_limit_runs_analyse_in_a_bare_pool() -> None:
    images_per_s, cpu_ms = measure.limit_with_cpu(photos.small_pngs(4, 64, 48), processes=1)
    assert images_per_s > 0 and cpu_ms > 0


def test_processes_get_their_role_from_the_command_line() -> None:
    assert measure.role_of("python -B -c from multiprocessing.forkserver import main; main(21, 23)") == "pixels"
    assert measure.role_of("/work/.venv/bin/python -m pixport.cli worker ") == "worker"
    assert measure.role_of("/work/.venv/bin/python -m pixport.cli serve ") == "server"
    assert measure.role_of("postgres: pixport pixport [local] idle") == "postgres"
    assert measure.role_of("/x/envoy/_bin/envoy -c envoy.yaml") == "envoy"
    assert measure.role_of("python -B -c from multiprocessing.resource_tracker import main") == "other"


def test_cpu_is_counted_by_role_including_children_that_exited() -> None:
    me = os.getpid()
    spent = measure.cpu_seconds(me, with_reaped_children=False)
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn a little CPU, measurably more than one clock tick
        pass
    assert measure.cpu_seconds(me, with_reaped_children=False) > spent
    assert measure.cpu_seconds(2**22 + 12345) == 0.0  # no such process
    # A child that burns CPU and is waited for: its time stays counted, in its parent's reaped children.
    before = measure.cpu_seconds(me)
    burn = "import time\nt = time.process_time() + 0.2\nwhile time.process_time() < t: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert measure.cpu_seconds(me) - before >= 0.15


def test_a_cpu_watch_reports_milliseconds_per_item_and_how_busy_the_machine_was() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        watch = measure.CpuWatch(os.getpid(), os.getpid())
        watch.start()
        deadline = time.process_time() + 0.1
        while time.process_time() < deadline:
            pass
        report = watch.per_item(10)
    finally:
        sleeper.kill()
        sleeper.wait()
    per_item = report["cpu_ms_per_item"]
    assert per_item["bench"] >= 8  # 100 ms of this process over 10 items
    assert per_item["other"] < per_item["bench"]  # the sleeping child: found, and next to nothing spent
    assert report["cpu_ms_per_item_total"] == round(sum(per_item.values()), 2)
    assert 0 < report["machine_busy_share"] <= 1


def test_the_ratio_is_explained_by_busy_cores_sharing_and_the_pixel_share() -> None:
    cpu = {"cpu_ms_per_item": {"pixels": 180.0, "worker": 20.0}, "cpu_ms_per_item_total": 200.0,
           "machine_busy_share": 0.95}
    explained = run.explain_ratio(cpu, bare_cpu_ms=171.0)
    assert explained["bare_vs_in_stack_pixel_cpu"] == 0.95
    assert explained["pixel_share_of_cpu"] == 0.9
    assert explained["product"] == round(0.95 * 0.95 * 0.9, 3)
    assert run.explain_ratio({"cpu_ms_per_item": {}, "cpu_ms_per_item_total": 0.0, "machine_busy_share": 0.0},
                             1.0)["product"] == 0.0


def test_the_pipeline_comparison_runs_on_one_photo() -> None:
    photo = io.BytesIO()
    Image.new("RGB", (pixel_bench.WIDTH // 10, pixel_bench.HEIGHT // 10), (10, 20, 30)).save(photo, "JPEG")
    seconds = pixel_bench.per_image({"pipeline": pixel_bench.pipeline}, [photo.getvalue()], rounds=1)
    assert seconds["pipeline"] > 0


def test_process_tree_memory_is_read_from_proc() -> None:
    me = os.getpid()
    assert me in measure.descendants(me)
    assert measure.rss_bytes([me]) > 1024 * 1024
    assert measure.tree_rss([me]) >= measure.rss_bytes([me])
    assert "python" in measure.command_line(me)


def test_load_runs_every_request_at_the_concurrency_asked() -> None:
    times: list[float] = []
    running = 0
    peak = 0

    async def call() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1

    asyncio.run(system._load(call, 20, 4, times))
    assert len(times) == 20 and peak == 4


def test_the_plans_ask_for_what_the_issue_says() -> None:
    assert run.QUICK.photos >= 100 and run.FULL.photos >= 100
    assert run.QUICK.photo_rounds >= 3 and run.FULL.photo_rounds >= 3  # a median that one outlier cannot move
    assert run.FULL.rss_images == 5000
    assert run.QUICK.dead_links == run.FULL.dead_links == 1000
    assert run.QUICK.small_images == run.FULL.small_images == 1000
    assert run.scale_figures(True) is not None


def test_each_round_is_compared_with_the_limits_measured_around_it() -> None:
    assert run.round_ratios([8.0, 9.0, 12.0], [10.0, 10.0, 8.0, 12.0]) == [0.8, 1.0, 1.2]
    with pytest.raises(ValueError, match="3 imports need 4 limits"):
        run.round_ratios([8.0, 9.0, 12.0], [10.0, 10.0, 8.0])


@pytest.mark.parametrize(("ratios", "middle"), [([0.9], 0), ([0.8, 0.95, 0.85], 2), ([0.7, 0.6], 1),
                                                 ([0.9, 0.8, 0.85, 0.86], 2)])
def test_the_reported_round_is_the_median_one(ratios: list[float], middle: int) -> None:
    assert run.median_round(ratios) == middle


def test_rounds_take_their_own_distinct_photos_after_the_warm_up() -> None:
    jpegs = [bytes([index]) for index in range(run.WARM_UP + 3 * 5)]
    plan = dataclasses.replace(run.QUICK, photos=5, photo_rounds=3)
    rounds = [run.round_photos(jpegs, plan, number) for number in range(3)]
    assert [len(photos_of_round) for photos_of_round in rounds] == [5, 5, 5]
    assert sorted(photo for photos_of_round in rounds for photo in photos_of_round) == jpegs[run.WARM_UP:]


def test_file_creation_is_timed_in_a_new_directory(tmp_path: Path) -> None:
    assert measure.file_create_us(tmp_path / "probe", files=32) > 0
    assert len(list((tmp_path / "probe").rglob("*"))) == 32 + 2  # the files and their two folders


def test_an_unsettled_file_system_is_waited_for_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = iter([400.0, 180.0, 20.0])
    slept: list[float] = []
    synced: list[None] = []
    monkeypatch.setattr(run, "file_create_us", lambda _directory: next(readings))
    figures = run.settle_file_system(tmp_path, sleep=slept.append, sync=lambda: synced.append(None))
    assert figures["fs_create_us"] == 20.0 and len(slept) == len(synced) == 2
    monkeypatch.setattr(run, "file_create_us", lambda _directory: 15.0)
    assert run.settle_file_system(tmp_path) == {"fs_create_us": 15.0, "fs_settle_wait_s": 0.0}


def test_the_wait_for_the_file_system_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(run, "file_create_us", lambda _directory: 400.0)
    figures = run.settle_file_system(tmp_path, 60.0, sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds),
                                     clock=lambda: clock[0], sync=lambda: None)
    assert figures == {"fs_create_us": 400.0, "fs_settle_wait_s": 60.0}
