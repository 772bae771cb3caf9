"""Run analyse() in a few long-lived child processes, each capped in memory and time.

Why processes of our own rather than ProcessPoolExecutor: when one of its workers dies the executor breaks
and fails every in-flight task, so an innocent image would share the fate of the one that crashed. Here each
child holds one image at a time on its own pipe; a child that dies, times out or is cancelled is killed and
replaced, and only its own image is failed.

Why 'forkserver': the server process runs asyncio, gRPC and driver threads, and fork() of a threaded process
copies locks that other threads held (gRPC documents fork as unsupported). The fork server is a fresh,
single-threaded interpreter that imports Pillow and numpy once (the preload), so a replacement child starts in
milliseconds instead of the ~1 s a 'spawn' child takes to import them. As with 'spawn', a child imports the
program's main module, so that module must keep its work under `if __name__ == "__main__":`.

Results come back as JSON and raw bytes (wire.py), never as pickles: see there why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from pixport.imaging.analyse import analyse
from pixport.imaging.types import Analysis, ImageRejected, Limits
from pixport.imaging.wire import read_reply, send_reply
from pixport.observability.metrics import PIXEL_PROCESS_RESTARTS

log = logging.getLogger(__name__)

TEST_HOOK_ENV = "PIXPORT_TEST_CRASH_HOOK"
OUT_OF_MEMORY = "image processing ran out of memory"
_TASKS_PER_PROCESS = 500  # recycle children now and then: bounds leaks and address-space fragmentation
_JOIN_SECONDS = 5.0
_STARTED = b"started"
_MIN_BLOB_BYTES = 64 * 1024 * 1024  # a 2000 px PNG rendition of noise is ~16 MB


class PixelPoolError(RuntimeError):
    """The pool itself failed (children lost before receiving the image): not the image's fault."""


class PixelPoolClosed(PixelPoolError):
    """The pool is closing (its process is stopping): the image was not looked at."""


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    tasks: int = 0


@dataclass
class _Slot:
    worker: _Worker | None = None
    request: _Request | None = None  # the image its child is working on


@dataclass
class _Request:
    """One image on its way through the pool; the futures are the caller's and resolved on its loop."""

    data: bytes
    loop: asyncio.AbstractEventLoop
    taken: asyncio.Future[None]  # a child has it: the time limit starts
    done: asyncio.Future[tuple[str, Any]]
    abandoned: bool = False  # the caller gave up (timeout, cancel): its child is killed, its result dropped

    def resolve(self, future: asyncio.Future[Any], result: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


class PixelPool:
    """Each child has one thread of its own that takes the next image from a shared queue the moment the
    child is free, so children never wait for the event loop between images (the caller's loop schedules
    hundreds of items; a reply used to idle its child for ~10 ms until the loop handed over the next one,
    half of a small image's time)."""

    def __init__(self, workers: int, limits: Limits) -> None:
        if workers < 1:
            raise ValueError("a pixel pool needs at least one worker")
        self._limits = limits
        # The fork server takes this process's environment when it starts. One image per process has no use
        # for BLAS threads, and each would reserve address space under RLIMIT_AS and make the fork server
        # multi-threaded again.
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["pixport.imaging.analyse", "scipy.fftpack"])  # phash needs scipy
        # Read here, in the server, because a forkserver child's environment is the fork server's.
        self._test_hooks = os.environ.get(TEST_HOOK_ENV) == "1"
        self._slots = [_Slot() for _ in range(workers)]
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the slots' request/worker pairing against kills
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, args=(slot,), name=f"pixport-pixels-{index}", daemon=True)
            for index, slot in enumerate(self._slots)
        ]
        for thread in self._threads:
            thread.start()

    async def analyse(self, data: bytes) -> Analysis:
        """analyse() in a child; ImageRejected also when the child dies, times out or runs out of memory."""
        if self._closed:
            raise PixelPoolClosed("the pixel pool is closed")
        loop = asyncio.get_running_loop()
        request = _Request(data, loop, loop.create_future(), loop.create_future())
        self._requests.put(request)
        try:
            await asyncio.shield(request.taken)  # queued: no time limit yet
            kind, payload = await asyncio.wait_for(asyncio.shield(request.done), self._limits.timeout_seconds)
        except TimeoutError:
            self._abandon(request)
            raise ImageRejected(f"image processing timed out after {self._limits.timeout_seconds:g} s") from None
        except asyncio.CancelledError:
            self._abandon(request)  # the caller gave up: no child working for nobody
            raise
        if kind == "closed":
            raise PixelPoolClosed("the pixel pool is closed")
        return self._result(kind, payload)

    async def close(self) -> None:
        """Stop every child; calls still in flight fail with PixelPoolClosed."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            for slot in self._slots:
                if slot.request is not None and slot.worker is not None:
                    slot.worker.process.kill()  # its thread sees the death and reports the pool closed
        for _ in self._threads:
            self._requests.put(None)
        await asyncio.to_thread(self._join_threads)

    def _join_threads(self) -> None:
        for thread in self._threads:
            thread.join()
        while True:  # whatever was queued behind the stop
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request is not None:
                request.resolve(request.done, ("closed", None))

    def _abandon(self, request: _Request) -> None:
        with self._lock:
            request.abandoned = True
            for slot in self._slots:
                if slot.request is request and slot.worker is not None:
                    slot.worker.process.kill()

    # --- A slot's own thread -------------------------------------------------------------------------

    def _serve(self, slot: _Slot) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                break
            if request.abandoned:
                continue
            if self._closed:
                request.resolve(request.done, ("closed", None))
                continue
            result = self._work_on(slot, request)
            if slot.worker is None and not self._closed:
                self._refill(slot)  # replace a child that died, was killed or aged now, not when an image waits
            request.resolve(request.done, result)
        self._retire(slot)

    def _refill(self, slot: _Slot) -> None:
        try:
            worker = self._spawn()
        except Exception:  # the next image on this slot tries again, and reports the failure to its caller
            log.exception("could not start a pixel pool process")
            return
        if self._closed:
            _stop(worker)
        else:
            slot.worker = worker

    def _work_on(self, slot: _Slot, request: _Request) -> tuple[str, Any]:
        # A child lost before it acknowledged the image (e.g. killed while idle) says nothing about this
        # image: retry once on a fresh child.
        for _attempt in range(2):
            try:
                worker = self._take(slot, request)
            except Exception:  # not this image's fault: the journey retries it later
                log.exception("could not start a pixel pool process")
                return "pool-error", "could not start a pixel pool process"
            if worker is None:
                return "closed", None
            max_blob = max(_MIN_BLOB_BYTES, 2 * self._limits.max_bytes)
            kind, payload = _exchange(worker.conn, request.data, max_blob)
            with self._lock:
                slot.request = None
                abandoned = request.abandoned
            worker.tasks += 1
            if abandoned or self._closed:  # killed on purpose: a timeout, a cancel, or the pool closing
                self._retire(slot)
                return ("closed", None) if self._closed else ("abandoned", None)
            if kind == "malformed":  # the pipe is out of step, or the child is not itself: never reuse it
                self._retire(slot, kill=True)
                return "failed", payload
            if kind == "died":
                reason = _death_reason(worker.process)
                self._retire(slot)
                return "rejected", reason
            if kind == "lost":
                self._retire(slot)
                continue
            if worker.tasks >= _TASKS_PER_PROCESS:
                self._retire(slot)
            return kind, payload
        return "pool-error", "pixel pool processes keep dying before they receive an image"

    def _take(self, slot: _Slot, request: _Request) -> _Worker | None:
        """The slot's child (a fresh one if it has none or it died), now holding `request`; None if closed."""
        if slot.worker is not None and not slot.worker.process.is_alive():
            self._retire(slot)
        if slot.worker is None:
            worker = self._spawn()
            if self._closed:
                _stop(worker)
                return None
            slot.worker = worker
        with self._lock:
            if request.abandoned or self._closed:
                return None
            slot.request = request
        request.resolve(request.taken, None)
        return slot.worker

    @staticmethod
    def _result(kind: str, payload: Any) -> Analysis:
        if kind == "ok" and isinstance(payload, Analysis):
            return payload
        if kind == "rejected":
            raise ImageRejected(str(payload))
        if kind == "pool-error":
            raise PixelPoolError(str(payload))
        log.error("pixel pool child failed unexpectedly: %s", payload)
        raise ImageRejected("image processing failed unexpectedly")

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=child_main,
            args=(child_conn, self._limits, self._test_hooks),
            name="pixport-pixels",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _Worker(process=process, conn=parent_conn)

    def _retire(self, slot: _Slot, kill: bool = False) -> None:
        """Called only from the slot's own thread, so no exchange is reading the pipe it closes."""
        worker, slot.worker = slot.worker, None
        if worker is None:
            return
        if not self._closed:
            PIXEL_PROCESS_RESTARTS.inc()  # its slot gets a fresh child: it died, timed out, misbehaved or aged
        if kill:
            worker.process.kill()
        _stop(worker)  # closing the pipe ends an idle child's loop (EOF)


def _exchange(conn: Connection, data: bytes, max_blob_bytes: int) -> tuple[str, Any]:
    """Runs in a pool thread: hand over the image, wait for the acknowledgement, then for the result."""
    try:
        conn.send_bytes(data)
        conn.recv_bytes(len(_STARTED))
    except (EOFError, OSError):
        return "lost", None
    try:
        return read_reply(conn, max_blob_bytes, data)
    except (EOFError, OSError):
        return "died", None
    except ValueError as error:
        return "malformed", str(error)


def _death_reason(process: BaseProcess) -> str:
    process.join(_JOIN_SECONDS)
    code = process.exitcode
    if code == -signal.SIGKILL:
        return OUT_OF_MEMORY + " (the process was killed)"
    if code is not None and code < 0:
        return f"image processing crashed ({signal.Signals(-code).name})"
    return "image processing crashed"


def _stop(worker: _Worker) -> None:
    worker.conn.close()
    worker.process.join(_JOIN_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(_JOIN_SECONDS)


def child_main(conn: Connection, limits: Limits, test_hooks: bool) -> None:
    """A pool child: one image at a time, until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    # Pixel work is long, CPU-bound batch work sharing the cores with the latency-bound worker, server and
    # PostgreSQL. SCHED_BATCH (no privilege needed) tells the scheduler so: a child waking up does not
    # preempt them, and it is preempted less often in turn. Measured side by side on 2 cores (12 rounds
    # of 100 photos each): 4 % less CPU per photo in the children (caches kept warm), import_vs_limit
    # 0.847 -> 0.872 on average; small images and event latency unchanged (docs/performance.md).
    if hasattr(os, "SCHED_BATCH"):  # Linux only
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limits.memory_bytes if hard == resource.RLIM_INFINITY else min(limits.memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send_bytes(_STARTED)
        if test_hooks and data.startswith(b"PIXPORT-TEST-GARBAGE"):
            conn.send_bytes(b"\x80\x04 a reply the parent must refuse, as from a subverted child")
            continue
        send_reply(conn, *_process(data, limits, test_hooks), sent=data)


def _process(data: bytes, limits: Limits, test_hooks: bool) -> tuple[str, Analysis | str]:
    try:
        if test_hooks:
            _test_hook(data, limits)
        return "ok", analyse(data, limits)
    except ImageRejected as rejected:
        return "rejected", rejected.reason
    except MemoryError:
        return "rejected", OUT_OF_MEMORY
    except Exception as error:  # a bug, not the image: keep the trace in the logs, not in the reason
        traceback.print_exc()
        return "failed", type(error).__name__


def _test_hook(data: bytes, limits: Limits) -> None:
    """Misbehave on purpose for the pool's tests; active only with PIXPORT_TEST_CRASH_HOOK=1."""
    if data.startswith(b"PIXPORT-TEST-EXIT"):
        os._exit(70)
    if data.startswith(b"PIXPORT-TEST-SEGV"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if data.startswith(b"PIXPORT-TEST-KILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    if data.startswith(b"PIXPORT-TEST-OOM"):
        hog = bytearray(limits.memory_bytes)
        del hog
    if data.startswith(b"PIXPORT-TEST-SLEEP"):
        time.sleep(3600)
