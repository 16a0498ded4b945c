"""Worker processes that outlive the files that kill them.

``multiprocessing.Pool`` hangs for ever when a worker dies in the middle of a task (a decoder
segfault in C, an out-of-memory kill, ``os._exit``): the task is never answered and nothing
says so. ``concurrent.futures.ProcessPoolExecutor`` notices, but then fails every task in
flight, and finding the culprit means retrying those one at a time.

This pool keeps the bookkeeping that makes the culprit certain instead. Each worker has its own
pipe and runs its tasks strictly in the order it was sent them, with at most ``DEPTH`` tasks
queued (two: the next task is already waiting when a result leaves, so a worker never idles on
a round trip). When a worker's process ends, its results already sent are collected first;
the oldest task it had not answered is the one it died on, and is reported as ``Lost`` with the
signal or exit status; the tasks queued behind it never started and go to the other workers.
A task that runs longer than ``timeout`` seconds has its worker killed and is reported the same
way. A replacement worker starts whenever there is work and fewer workers than asked.

Workers are plain processes (forked on Linux while the parent runs one thread, else started by
the ``multiprocessing`` context given); they ignore Ctrl+C (the parent handles it) and die with
the parent: its end of their pipe closes (they hold no copy of it), and on Linux the kernel
kills them when the parent dies (``PR_SET_PDEATHSIG``), even in the middle of a task that never
ends.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from .errors import DedupdbError

T = TypeVar("T")
R = TypeVar("R")

# Tasks queued at each worker: the one it runs and the next one.
DEPTH = 2
# How long a worker asked to stop may take before it is killed.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class Lost:
    """A task whose worker died or was killed before answering."""

    signal: int | None = None  # killed by this signal (SIGSEGV, SIGKILL, ...)
    exitcode: int | None = None  # or exited with this status
    timeout: float | None = None  # or ran longer than this many seconds and was killed
    error: str | None = None  # or raised this (a bug: the function should return its failures)

    @property
    def reason(self) -> str:
        if self.timeout is not None:
            return f"took longer than {self.timeout:g} s"
        if self.signal is not None:
            return f"signal {self.signal} ({_signal_name(self.signal)})"
        if self.error is not None:
            return f"unexpected error: {self.error}"
        return f"exited with status {self.exitcode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


class _Refused(Exception):
    """No further worker could start; those running go on."""


@dataclass
class _Worker(Generic[T]):
    process: BaseProcess
    conn: Connection
    queued: collections.deque[T] = field(default_factory=collections.deque)
    started: float = 0.0  # when its oldest queued task started running (monotonic)


class Pool(Generic[T, R]):
    """Run ``function`` over tasks in ``workers`` processes; see the module docstring.

    Use as a context manager; ``submit`` tasks (also while iterating), and ``results`` yields
    ``(task, result or Lost)`` in completion order until every submitted task is answered.
    """

    def __init__(
        self,
        function: Callable[[T], R],
        workers: int,
        context: BaseContext,
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        timeout: float | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.function = function
        self.size = workers
        self.context = context
        self.initializer = initializer
        self.initargs = initargs
        self.timeout = timeout
        self.pending: collections.deque[T] = collections.deque()
        self.workers: list[_Worker[T]] = []
        self.started_workers = 0  # replacements included

    def __enter__(self) -> Pool[T, R]:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        # Leaving on an error (a refused database, Ctrl+C): no worker has anything to finish.
        self.close(kill=kind is not None)

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process.pid is not None]

    def activity(self) -> list[tuple[int, T | None, float | None]]:
        """Each worker's pid, the task it is on (None: idle) and for how many seconds."""
        now = time.monotonic()
        return [
            (w.process.pid, w.queued[0], now - w.started)
            if w.queued
            else (w.process.pid, None, None)
            for w in self.workers
            if w.process.pid is not None
        ]

    def start(self) -> None:
        """Start the workers now rather than when the first task is submitted: they run their
        ``initializer`` (load and warm up their code) while this process prepares the tasks."""
        while len(self.workers) < self.size:
            try:
                self.workers.append(self._start_or_refuse())
            except _Refused:  # the others start when there is work, if they can then
                return

    def submit(self, task: T) -> None:
        self.pending.append(task)

    def results(self) -> Iterator[tuple[T, R | Lost]]:
        while True:
            self._dispatch()
            if not self.pending and not any(w.queued for w in self.workers):
                return
            # Idle workers are watched too: one that died is replaced before it is sent work.
            waitables: list[Any] = [w.conn for w in self.workers]
            waitables += [w.process.sentinel for w in self.workers]
            ready = set(wait(waitables, self._until_deadline()))
            done: list[tuple[T, R | Lost]] = []
            for worker in list(self.workers):
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._collect(worker, done)
            self._expire(done)
            yield from done

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: idle ones are asked (``kill``: killed too), busy ones killed;
        wait for all."""
        workers, self.workers = self.workers, []
        for worker in workers:
            if worker.queued or kill:
                worker.process.kill()
            else:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            worker.process.close()

    # ------------------------------------------------------------------------- internals

    def _dispatch(self) -> None:
        """Hand pending tasks to workers with room (idle ones first), starting workers as
        needed. A worker whose pipe is broken gets nothing more; its end is seen in ``results``.
        """
        while self.pending and len(self.workers) < self.size:
            try:
                self.workers.append(self._start_or_refuse())
            except _Refused:  # out of processes or memory: go on with those running
                break
        broken: set[int] = set()
        for level in range(DEPTH):
            for worker in self.workers:
                if not self.pending:
                    return
                if len(worker.queued) > level or id(worker) in broken:
                    continue
                task = self.pending.popleft()
                try:
                    worker.conn.send(task)
                except OSError:
                    self.pending.appendleft(task)
                    broken.add(id(worker))
                    continue
                if not worker.queued:
                    worker.started = time.monotonic()
                worker.queued.append(task)

    def _start_or_refuse(self) -> _Worker[T]:
        """A new worker; when none can start (out of processes or memory), an error if this
        pool has no worker at all, else ``_Refused``."""
        try:
            return self._start()
        except OSError as err:
            if self.workers:
                raise _Refused from err
            raise DedupdbError(
                f"cannot start a worker process: {err.strerror or err}",
                "free some memory, or give fewer --workers",
            ) from err

    def _start(self) -> _Worker[T]:
        parent_end, child_end = self.context.Pipe(duplex=True)
        # Under fork the child inherits every parent end of the pipes, its own included: it
        # closes them, so that each worker sees end-of-file when the parent goes away.
        forked = self.context.get_start_method() == "fork"
        inherited = [w.conn for w in self.workers] + [parent_end] if forked else []
        parent = os.getpid() if forked else None
        process = self.context.Process(  # type: ignore[attr-defined]  # every context has it
            target=_serve,
            args=(child_end, self.function, self.initializer, self.initargs, inherited, parent),
            name=f"dedupdb-worker-{self.started_workers + 1}",
            daemon=True,
        )
        # Ctrl+C stays blocked until the worker has set it to be ignored.
        blocked = _block_sigint()
        try:
            process.start()
        finally:
            _restore_sigmask(blocked)
        child_end.close()
        self.started_workers += 1
        return _Worker(process, parent_end)

    def _collect(self, worker: _Worker[T], done: list[tuple[T, R | Lost]]) -> None:
        """Take every answer the worker sent; if its process ended, report the task it died on."""
        try:
            while worker.conn.poll():
                kind, value = worker.conn.recv()
                task = worker.queued.popleft()
                worker.started = time.monotonic()
                done.append((task, Lost(error=value) if kind == "error" else value))
        except (EOFError, OSError):
            pass
        else:
            if worker.process.is_alive():
                return
        self._bury(worker, None, done)

    def _expire(self, done: list[tuple[T, R | Lost]]) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.queued and now - worker.started > self.timeout:
                if worker.conn.poll():  # it answered just now: collected on the next round
                    continue
                worker.process.kill()
                self._bury(worker, Lost(timeout=self.timeout), done)

    def _bury(self, worker: _Worker[T], lost: Lost | None, done: list[tuple[T, R | Lost]]) -> None:
        worker.process.join(STOP_GRACE_S)
        if worker.process.exitcode is None:  # its pipe broke, yet it runs: end it
            worker.process.kill()
            worker.process.join()
        code = worker.process.exitcode
        if lost is None:
            lost = Lost(signal=-code) if code is not None and code < 0 else Lost(exitcode=code)
        if worker.queued:
            done.append((worker.queued.popleft(), lost))
            # Queued behind the culprit, never started: first in line for the other workers.
            self.pending.extendleft(reversed(worker.queued))
        self.workers.remove(worker)
        worker.conn.close()
        worker.process.close()

    def _until_deadline(self) -> float | None:
        if self.timeout is None:
            return None
        oldest = min((w.started for w in self.workers if w.queued), default=None)
        if oldest is None:
            return None
        return max(0.0, oldest + self.timeout - time.monotonic()) + 0.01


def _serve(
    conn: Connection,
    function: Callable[[Any], Any],
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    inherited: list[Connection],
    parent: int | None,
) -> None:
    """A worker's life: run each task received, send its result, until told to stop or the
    parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl+C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler: a stop is a stop
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for other in inherited:
        other.close()
    _die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        try:
            answer: tuple[str, Any] = ("ok", function(task))
        except Exception as err:  # a bug, not a bad file: report it with the task
            where = traceback.extract_tb(err.__traceback__)[-1]
            answer = ("error", f"{type(err).__name__}: {err} ({where.filename}:{where.lineno})")
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


def _block_sigint() -> set[int | signal.Signals] | None:
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _restore_sigmask(mask: set[int | signal.Signals] | None) -> None:
    if mask is not None and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _die_with_parent(parent: int | None) -> None:
    """On Linux, have the kernel kill this process when its parent dies, even mid-task.

    ``parent``: the pool's process when it forked this one (else a fork server did).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: end-of-file still works
        return
    if parent is not None and os.getppid() != parent:  # it died before the request took effect
        os._exit(0)
