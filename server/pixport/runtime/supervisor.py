"""`pixport up`: PostgreSQL (embedded unless DATABASE_URL), migrations, the gRPC server, the
workers and Envoy, as children that stop together on Ctrl-C / SIGTERM (or if one of them dies)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pixport.config import Settings
from pixport.runtime.postgres import EmbeddedPostgres, PostgresNotInstalled
from pixport.runtime.processes import child_preexec, die_with_parent

READY_TIMEOUT = 60.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_signal: int = signal.SIGTERM


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
    children: list[Child] = field(default_factory=list)
    _stopping: bool = False

    def _say(self, message: str) -> None:
        print(f"pixport: {message}", flush=True)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def run(self) -> int:
        if (refusal := refuse_second_instance(self.settings)) is not None:
            self._say(refusal)
            return 1
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        die_with_parent()
        try:
            self._start_all()
            if not self._stopping:
                self._announce()
            return self._watch()
        except (PostgresNotInstalled, RuntimeError) as error:
            self._say(f"error: {error}")
            return 1
        finally:
            self._stop_all()

    def _start_all(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        dsn = settings.database_url
        if dsn is None:
            postgres = EmbeddedPostgres(settings.postgres_dir)
            postgres.prepare()
            process = postgres.start()
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
            self.children.append(Child("postgres", process, signal.SIGINT))
            postgres.wait_ready(process)
            dsn = postgres.dsn
            self._say(f"PostgreSQL (embedded) ready, data in {postgres.data}")
        env = {**os.environ, "DATABASE_URL": dsn, "PYTHONUNBUFFERED": "1"}
        self._run_step([sys.executable, "-m", "pixport.cli", "migrate"], env, "migrations")
        logs = settings.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        self._spawn("server", [sys.executable, "-m", "pixport.cli", "serve"], env, logs)
        for index in range(max(1, settings.worker_processes)):
            self._spawn(f"worker-{index + 1}", [sys.executable, "-m", "pixport.cli", "worker"], env, logs)
        self._start_envoy(logs)
        self._wait_ready()

    def _run_step(self, command: list[str], env: dict[str, str], what: str) -> None:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{result.stdout}{result.stderr}")
        self._say(result.stdout.strip())

    def _spawn(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        log = (logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=child_preexec,
        )
        self.children.append(Child(name, process))

    def _start_envoy(self, logs: Path) -> None:
        from gateway import edge

        settings = self.settings
        config = settings.data_dir / "envoy.yaml"
        config.write_text(edge.render(
            http_port=settings.http_port, grpc_port=settings.grpc_port, admin_port=settings.admin_port,
            http_host=settings.http_host, grpc_host=settings.grpc_host,
        ))
        self.children.append(Child("envoy", edge.start(config, logs / "envoy.log", child_preexec)))

    def _wait_ready(self) -> None:
        url = f"http://127.0.0.1:{self.settings.http_port}/ready"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stopping:
            self._check_children()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        if not self._stopping:
            raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s; logs in {self.settings.data_dir / 'logs'}")

    def _check_children(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                if not self._stopping:
                    raise RuntimeError(
                        f"{child.name} exited with code {child.process.returncode}; "
                        f"see {self.settings.data_dir / 'logs'}"
                    )
                return child
        return None

    def _announce(self) -> None:
        s = self.settings
        self._say(f"REST edge (Envoy)  http://127.0.0.1:{s.http_port}   (GET /ready)")
        target = f"{s.grpc_host}:{s.grpc_port}"
        self._say(f"gRPC               {target}   (reflection: grpcurl -plaintext {target} list)")
        self._say(f"Envoy admin        http://127.0.0.1:{s.admin_port}")
        self._say(f"logs               {s.data_dir / 'logs'}")
        self._say("get a token:  .venv/bin/pixport client create --org my-org   "
                  "# prints client_id and secret")
        self._say("              .venv/bin/pixport token --client <client_id> "
                  "--scope public-api:write --scope public-api:read")
        self._say("ready; Ctrl-C stops everything")

    def _watch(self) -> int:
        while not self._stopping:
            try:
                self._check_children()
            except RuntimeError as error:
                self._say(f"error: {error}")
                return 1
            time.sleep(0.2)
        self._say("stopping")
        return 0

    def _stop_all(self) -> None:
        # Reverse order: the edge first (no new requests), PostgreSQL last. Each child is asked alone
        # (a worker hands its in-flight images back to the queue and stops its own pixel processes);
        # whatever is left in its process group afterwards is killed.
        for child in reversed(self.children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(child.stop_signal)
            self._reap(child, timeout=20)
        self.children.clear()

    def _reap(self, child: Child, timeout: float) -> None:
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._say(f"{child.name} did not stop in {timeout:.0f} s; killing it")
            child.process.kill()
            child.process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)

