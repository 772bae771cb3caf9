"""`pixport up`: PostgreSQL (embedded unless DATABASE_URL), migrations, the gRPC server, the
workers and Envoy, as supervised children.

A child that dies is restarted after a backoff (PostgreSQL included: the others ride out the
outage and reconnect); a child that keeps dying (a crash loop) stops everything with a message
saying which one and where its log is. Ctrl-C / SIGTERM drains in order: the edge stops taking
requests, then the server (health NOT_SERVING, streams end with a clean status) and the workers
(in-flight items handed back) together, PostgreSQL last. A second Ctrl-C / SIGTERM kills every
child at once; leases then expire and nothing is lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pixport.config import Settings
from pixport.runtime.postgres import EmbeddedPostgres, PostgresNotInstalled
from pixport.runtime.processes import child_preexec, die_with_parent

READY_TIMEOUT = 60.0
POLL_SECONDS = 0.2

# Stop stages, highest first: the edge, then the processes that use the database, then the database.
STAGE_DATABASE = 0
STAGE_APPLICATION = 1
STAGE_EDGE = 2


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts; more than `max_restarts` within `window_seconds`
    is a crash loop. A child that stayed up for `healthy_after_seconds` starts afresh."""

    initial_delay: float = 0.5
    max_delay: float = 10.0
    max_restarts: int = 5
    window_seconds: float = 60.0
    healthy_after_seconds: float = 30.0

    def delay(self, consecutive_failures: int) -> float:
        return float(min(self.max_delay, self.initial_delay * 2 ** max(0, consecutive_failures - 1)))

    def is_crash_loop(self, restart_times: deque[float], now: float) -> bool:
        recent = [at for at in restart_times if now - at <= self.window_seconds]
        return len(recent) >= self.max_restarts


class CrashLoop(RuntimeError):
    pass


@dataclass
class ChildSpec:
    """How to start one child. `start` returns the running process; `ready` (optional) blocks
    until it serves, raising RuntimeError if it cannot."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    stage: int = STAGE_APPLICATION
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 30.0
    ready: Callable[[subprocess.Popen[bytes]], None] | None = None


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    started_at: float
    restart_times: deque[float] = field(default_factory=lambda: deque(maxlen=32))
    consecutive_failures: int = 0
    restart_at: float | None = None  # set while dead and waiting out its backoff

    @property
    def name(self) -> str:
        return self.spec.name


def refuse_second_instance(settings: Settings) -> str | None:
    """Why this `pixport up` must not start (another one runs on the same data dir), or None."""
    from pixport.runtime.pidlock import AlreadyRunning, hold

    try:
        hold(settings.data_dir)
    except AlreadyRunning as error:
        return str(error)
    return None


@dataclass
class Supervisor:
    settings: Settings
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    children: list[Child] = field(default_factory=list)
    _stopping: bool = False

    def _say(self, message: str) -> None:
        print(f"pixport: {message}", flush=True)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stopping:
            self._say(f"second {signal.Signals(signum).name}: killing every child now "
                      "(leased items return to the queue when their leases expire)")
            for child in self.children:
                _kill_group(child.process)
            os._exit(1)
        self._stopping = True

    def run(self) -> int:
        if (refusal := refuse_second_instance(self.settings)) is not None:
            self._say(refusal)
            return 1
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        die_with_parent()
        metrics: object | None = None
        try:
            self._start_all()
            metrics = self._serve_metrics()
            if not self._stopping:
                self._announce()
            return self._watch()
        except (PostgresNotInstalled, RuntimeError) as error:
            self._say(f"error: {error}")
            return 1
        finally:
            self._stop_all()
            if metrics is not None:
                with contextlib.suppress(Exception):
                    metrics.shutdown()  # type: ignore[attr-defined]

    # -- starting -------------------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.settings.data_dir / "logs"

    @property
    def metrics_dir(self) -> Path:
        return self.settings.data_dir / "metrics"

    def _start_all(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        # Counters of an earlier run must not leak into this one's totals.
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir()
        dsn = settings.database_url
        if dsn is None:
            postgres = EmbeddedPostgres(settings.postgres_dir)
            postgres.prepare()
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
            self._launch(ChildSpec("postgres", postgres.start, STAGE_DATABASE, signal.SIGINT, 60.0,
                                   ready=postgres.wait_ready))
            dsn = postgres.dsn
            self._say(f"PostgreSQL (embedded) ready, data in {postgres.data}")
        env = self._child_env(dsn)
        self._run_step([sys.executable, "-m", "pixport.cli", "migrate"], env, "migrations")
        for name, command in self.application_commands():
            self._launch(ChildSpec(name, self._spawner(name, command, env)))
        self._launch(ChildSpec("envoy", self._start_envoy, STAGE_EDGE, stop_timeout=10.0))
        self._wait_ready()

    def application_commands(self) -> list[tuple[str, list[str]]]:
        """The pixport processes of a stack: (name, argv). Edit here to add or rename roles."""
        python = [sys.executable, "-m", "pixport.cli"]
        commands = [("server", [*python, "serve"])]
        for index in range(max(1, self.settings.worker_processes)):
            commands.append((f"worker-{index + 1}", [*python, "worker"]))
        return commands

    def _child_env(self, dsn: str) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": dsn, "PYTHONUNBUFFERED": "1",
               # Every child writes its metrics here; the supervisor serves their sum on one URL.
               "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)}
        env.pop("PIXPORT_METRICS_PORT", None)  # that port is the supervisor's
        return env

    def _run_step(self, command: list[str], env: dict[str, str], what: str) -> None:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{result.stdout}{result.stderr}")
        self._say(result.stdout.strip())

    def _spawner(self, name: str, command: list[str], env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
        def spawn() -> subprocess.Popen[bytes]:
            with (self.logs / f"{name}.log").open("ab") as log:
                return subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=child_preexec,
                )
        return spawn

    def _start_envoy(self) -> subprocess.Popen[bytes]:
        from gateway import edge

        settings = self.settings
        config = settings.data_dir / "envoy.yaml"
        config.write_text(edge.render(
            http_port=settings.http_port, grpc_port=settings.grpc_port, admin_port=settings.admin_port,
            http_host=settings.http_host, grpc_host=settings.grpc_host,
        ))
        return edge.start(config, self.logs / "envoy.log", child_preexec)

    def _launch(self, spec: ChildSpec) -> Child:
        process = spec.start()
        child = Child(spec, process, time.monotonic())
        self.children.append(child)
        if spec.ready is not None:
            spec.ready(process)
        return child

    def _wait_ready(self) -> None:
        url = f"http://127.0.0.1:{self.settings.http_port}/ready"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stopping:
            self._tend()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(POLL_SECONDS)
        if not self._stopping:
            raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s; logs in {self.logs}")

    def _serve_metrics(self) -> object | None:
        """All children's metrics, summed, on PIXPORT_METRICS_PORT (loopback; 0 turns it off)."""
        port = int(os.environ.get("PIXPORT_METRICS_PORT", "9464") or 0)
        if port == 0:
            return None
        from pixport.observability.exposition import serve_multiprocess

        try:
            server = serve_multiprocess(self.metrics_dir, port)
        except OSError as error:
            self._say(f"warning: cannot serve metrics on 127.0.0.1:{port}: {error}")
            return None
        self._metrics_url = f"http://127.0.0.1:{port}/metrics"
        return server  # type: ignore[no-any-return]

    def _announce(self) -> None:
        s = self.settings
        self._say(f"REST edge (Envoy)  http://127.0.0.1:{s.http_port}   (GET /ready)")
        target = f"{s.grpc_host}:{s.grpc_port}"
        self._say(f"gRPC               {target}   (reflection: grpcurl -plaintext {target} list)")
        self._say(f"Envoy admin        http://127.0.0.1:{s.admin_port}")
        metrics_url = getattr(self, "_metrics_url", None)
        if metrics_url:
            self._say(f"metrics            {metrics_url}   (Prometheus text, every process)")
        self._say(f"logs               {self.logs}")
        self._say("get a token:  .venv/bin/pixport client create --org my-org   "
                  "# prints client_id and secret")
        self._say("              .venv/bin/pixport token --client <client_id> "
                  "--scope public-api:write --scope public-api:read")
        self._say("ready; Ctrl-C stops everything")

    # -- supervising ----------------------------------------------------------------------------

    def _watch(self) -> int:
        while not self._stopping:
            try:
                self._tend()
            except CrashLoop as error:
                self._say(f"error: {error}")
                return 1
            time.sleep(POLL_SECONDS)
        self._say("stopping")
        return 0

    def _tend(self) -> None:
        """Notice dead children and restart those whose backoff has passed."""
        now = time.monotonic()
        for child in self.children:
            if self._stopping:
                return
            if child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                self._on_death(child, code, now)
            if child.restart_at is not None and now >= child.restart_at:
                self._restart(child)

    def _on_death(self, child: Child, code: int, now: float) -> None:
        # Leftovers in its group (PostgreSQL backends, pixel processes) would hold locks or memory.
        _kill_group(child.process)
        self._forget_metrics(child.process.pid)
        if now - child.started_at >= self.policy.healthy_after_seconds:
            child.consecutive_failures = 0
        child.consecutive_failures += 1
        if self.policy.is_crash_loop(child.restart_times, now):
            raise CrashLoop(
                f"{child.name} keeps dying ({len(child.restart_times)} restarts, last exit code {code}); "
                f"stopping everything. See {self._log_of(child)}"
            )
        delay = self.policy.delay(child.consecutive_failures)
        child.restart_at = now + delay
        self._say(f"{child.name} exited with code {code}; restarting in {delay:.1f} s "
                  f"(see {self._log_of(child)})")

    def _restart(self, child: Child) -> None:
        now = time.monotonic()
        child.restart_times.append(now)
        child.restart_at = None
        child.started_at = now
        try:
            child.process = child.spec.start()
            if child.spec.ready is not None:
                child.spec.ready(child.process)
        except (OSError, RuntimeError) as error:
            self._say(f"{child.name} failed to restart: {error}")
            if child.process.poll() is None:
                _kill_group(child.process)
            return  # noticed as dead on the next round, with a longer backoff
        self._say(f"{child.name} restarted (pid {child.process.pid})")

    def _log_of(self, child: Child) -> Path:
        if child.name == "postgres":
            return self.settings.postgres_dir / "postgres.log"
        return self.logs / f"{child.name}.log"

    def _forget_metrics(self, pid: int) -> None:
        with contextlib.suppress(Exception):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]

    # -- stopping -------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        # The edge first (no new requests), then the server and workers together (health
        # NOT_SERVING, streams closed cleanly, in-flight items handed back), PostgreSQL last.
        # Whatever is left in a child's process group afterwards is killed.
        for stage in sorted({child.spec.stage for child in self.children}, reverse=True):
            group = [child for child in self.children if child.spec.stage == stage]
            for child in group:
                if child.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.send_signal(child.spec.stop_signal)
            for child in group:
                self._reap(child)
        self.children.clear()

    def _reap(self, child: Child) -> None:
        timeout = child.spec.stop_timeout
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._say(f"{child.name} did not stop in {timeout:.0f} s; killing it")
            child.process.kill()
            child.process.wait()
        _kill_group(child.process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
