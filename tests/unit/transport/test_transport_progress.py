"""The CLI's progress bar and hints: readable at 80 columns, helpful on common mistakes."""

from __future__ import annotations

import io

import grpc
import pytest
from pixport.transport.hints import rpc_problem, token_problem
from pixport.transport.progress import Tally, new_progress
from pixport.v1 import import_job_pb2
from rich.console import Console

Item = import_job_pb2.ImportItem


def render(width: int, tally: Tally, elapsed: float, job_id: str = "k49k2grn11sravdj") -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    progress = new_progress(console)
    rate, eta = tally.rate_and_eta(elapsed)
    task = progress.add_task(job_id, total=tally.total, counts=tally.short(), rate=rate, eta=eta)
    progress.update(task, completed=tally.done)
    console.print(progress.make_tasks_table(progress.tasks))
    return out.getvalue().rstrip("\n").split("\n")


def tally_of(total: int, success: int, skipped: int, failed: int) -> Tally:
    tally = Tally(total)
    for status, count in ((Item.success, success), (Item.skipped, skipped), (Item.failed, failed)):
        for n in range(count):
            tally.record(Item(status=status, external_id=f"e{n}", reason="HTTP 404"))
    return tally


@pytest.mark.parametrize("width", [80, 100, 60])
def test_bar_keeps_count_rate_and_eta_whole(width: int) -> None:
    tally = tally_of(1000, 412, 31, 7)  # 450 done
    [line] = render(width, tally, elapsed=90.0)
    assert len(line) <= width
    assert "450/1000" in line
    assert "ok 412 skip 31 fail 7" in line
    assert "5.0/s" in line
    assert "ETA 0:01:50" in line  # 550 left at 5/s


def test_bar_at_80_columns_with_large_counts() -> None:
    tally = tally_of(100000, 99000, 500, 400)
    [line] = render(80, tally, elapsed=3600.0)
    assert "99900/100000" in line and "ok 99000 skip 500 fail 400" in line
    assert "27.8/s" in line and "ETA 0:00:04" in line
    assert len(line) <= 80


def test_rate_and_eta_before_anything_finished() -> None:
    assert Tally(10).rate_and_eta(5.0) == ("-/s", "-:--:--")


def test_client_secret_given_as_token_says_how_to_mint_one() -> None:
    assert "mint one with `pixport token" in (token_problem("pxs_reMafQxG03dqoAbg84e1FrD3Px8T") or "")
    assert "pixport token" in (token_problem("not-a-jwt") or "")
    assert "PIXPORT_TOKEN" in (token_problem(None) or "")
    assert token_problem("a.b.c") is None


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_unreachable_server_asks_whether_make_run_is_running() -> None:
    text = rpc_problem(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connect failed"), "127.0.0.1:1", "127.0.0.1:50051")
    assert text == "cannot reach pixport at 127.0.0.1:1: is `make run` running? it listens on 127.0.0.1:50051"
    assert rpc_problem(FakeRpcError(grpc.StatusCode.NOT_FOUND, "no job"), "s", "l") == "NOT_FOUND: no job"
