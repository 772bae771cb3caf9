from __future__ import annotations

from collections import deque

from pixport.runtime.supervisor import RestartPolicy


def test_backoff_doubles_and_is_capped() -> None:
    policy = RestartPolicy(initial_delay=0.5, max_delay=4.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_crash_loop_is_max_restarts_within_the_window() -> None:
    policy = RestartPolicy(max_restarts=3, window_seconds=60.0)
    assert not policy.is_crash_loop(deque([100.0, 110.0]), now=120.0)
    assert policy.is_crash_loop(deque([100.0, 110.0, 115.0]), now=120.0)
    # Restarts older than the window no longer count.
    assert not policy.is_crash_loop(deque([10.0, 20.0, 115.0]), now=120.0)
