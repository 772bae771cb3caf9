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
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
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
    busy: bool = False


class PixelPool:
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
        self._free: asyncio.Queue[_Slot | None] = asyncio.Queue()
        for slot in self._slots:
            self._free.put_nowait(slot)
        # One thread per slot blocks on its child's pipe; the spare half covers joins of killed children.
        self._executor = ThreadPoolExecutor(max_workers=2 * workers, thread_name_prefix="pixport-pixels")
        self._closed = False
        self._refills: set[asyncio.Task[None]] = set()

    async def analyse(self, data: bytes) -> Analysis:
        """analyse() in a child; ImageRejected also when the child dies, times out or runs out of memory."""
        slot = await self._free.get()
        if slot is None:
            self._free.put_nowait(None)  # wake the next waiter too
            raise PixelPoolClosed("the pixel pool is closed")
        try:
            if self._closed:
                raise PixelPoolClosed("the pixel pool is closed")
            slot.busy = True
            return await self._analyse_in(slot, data)
        finally:
            slot.busy = False
            if slot.worker is None and not self._closed:
                # Replace a child that died or was killed now, not when the next image is waiting for it.
                refill = asyncio.get_running_loop().create_task(self._refill(slot))
                self._refills.add(refill)
                refill.add_done_callback(self._refills.discard)
            else:
                self._free.put_nowait(slot)

    async def close(self) -> None:
        """Stop every child; calls still in flight fail with PixelPoolError."""
        if self._closed:
            return
        self._closed = True
        self._free.put_nowait(None)
        stopping = []
        for slot in self._slots:
            if slot.worker is None:
                continue
            if slot.busy:
                slot.worker.process.kill()  # its caller sees the death and retires the slot itself
            else:
                worker, slot.worker = slot.worker, None
                stopping.append(asyncio.get_running_loop().run_in_executor(self._executor, _stop, worker))
        await asyncio.gather(*stopping)
        self._executor.shutdown(wait=False)

    async def _refill(self, slot: _Slot) -> None:
        try:
            worker = await asyncio.get_running_loop().run_in_executor(self._executor, self._spawn)
        except Exception:  # the next call on this slot tries again, and reports the failure to its caller
            log.exception("could not start a pixel pool process")
        else:
            if self._closed:
                self._stop_later(worker)
            else:
                slot.worker = worker
        finally:
            self._free.put_nowait(slot)

    async def _analyse_in(self, slot: _Slot, data: bytes) -> Analysis:
        # A child lost before it acknowledged the image (e.g. killed while idle) says nothing about this
        # image: retry once on a fresh child.
        for _attempt in range(2):
            kind, payload = await self._round_trip(slot, data)
            if kind != "lost":
                return self._result(kind, payload)
        raise PixelPoolError("pixel pool processes keep dying before they receive an image")

    async def _round_trip(self, slot: _Slot, data: bytes) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        if slot.worker is None or not slot.worker.process.is_alive():
            self._retire(slot)
            if not self._closed:
                slot.worker = await loop.run_in_executor(self._executor, self._spawn)
            if self._closed:  # closed before or while the child started
                self._retire(slot)
                raise PixelPoolClosed("the pixel pool is closed")
        worker = slot.worker
        assert worker is not None
        max_blob = max(_MIN_BLOB_BYTES, 2 * self._limits.max_bytes)
        future = loop.run_in_executor(self._executor, _exchange, worker.conn, data, max_blob)
        try:
            kind, payload = await asyncio.wait_for(asyncio.shield(future), self._limits.timeout_seconds)
        except TimeoutError:
            self._retire(slot, kill=True, after=future)
            raise ImageRejected(f"image processing timed out after {self._limits.timeout_seconds:g} s") from None
        except asyncio.CancelledError:
            self._retire(slot, kill=True, after=future)  # the caller gave up: no child working for nobody
            raise
        worker.tasks += 1
        if kind == "malformed":  # the pipe is out of step, or the child is not itself: never reuse it
            self._retire(slot, kill=True)
            return "failed", payload
        if kind in ("lost", "died"):
            if self._closed:
                self._retire(slot)
                raise PixelPoolClosed("the pixel pool is closed")
            if kind == "died":
                reason = await loop.run_in_executor(self._executor, _death_reason, worker.process)
                self._retire(slot)
                return "rejected", reason
            self._retire(slot)
        elif worker.tasks >= _TASKS_PER_PROCESS:
            self._retire(slot)
        return kind, payload

    @staticmethod
    def _result(kind: str, payload: Any) -> Analysis:
        if kind == "ok" and isinstance(payload, Analysis):
            return payload
        if kind == "rejected":
            raise ImageRejected(str(payload))
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

    def _retire(self, slot: _Slot, kill: bool = False, after: asyncio.Future[Any] | None = None) -> None:
        worker, slot.worker = slot.worker, None
        if worker is None:
            return
        if not self._closed:
            PIXEL_PROCESS_RESTARTS.inc()  # its slot gets a fresh child: it died, timed out, misbehaved or aged
        if kill:
            worker.process.kill()
        # Closing the pipe ends an idle child's loop (EOF). Never close it under a thread still reading it
        # (the fd number could be reused), so wait for the exchange, which the kill ends at once.
        if after is None or after.done():
            self._stop_later(worker)
        else:
            after.add_done_callback(lambda _: self._stop_later(worker))

    def _stop_later(self, worker: _Worker) -> None:
        try:
            self._executor.submit(_stop, worker)
        except RuntimeError:  # the executor is shut down (pool closed): a thread of its own, then
            threading.Thread(target=_stop, args=(worker,), daemon=True).start()


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
