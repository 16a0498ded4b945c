"""The execution seam: what runs the index's per-file work, wherever it runs.

Index planning decides *which* files need decoding; an ``Executor`` decides *where* that work
runs: today's local process pool (``pool.Pool``: one process per core, crash isolation,
timeouts), or a distributed engine's workers. Planning and writing never change with it: they
submit tasks, and take each task's result (or ``Lost``: the worker died, ran past its timeout
or raised) as it arrives, in completion order, committing each one as a checkpoint.

The function an executor runs is pure (a task in, a result out; no database access), so the
task and its result must be picklable: they cross a process or a network.

``local_executor`` makes the index's default (``pool.Pool`` running ``fingerprint
.process_file`` in ``workers``' processes), ``in_process_executor`` runs the same function in
this process (tests that watch the decoder). Another engine plugs in by implementing
``Executor`` and being passed to ``index(..., executor=...)``; planning and writing stay as
they are (tests/test_executor.py indexes through one over ``concurrent.futures``).
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from .defaults import DEFAULT_MAX_MEMORY_MB
from .fingerprint.records import Result, Task
from .pool import Lost
from .workers import worker_pool

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Executor", "InProcess", "Lost", "in_process_executor", "local_executor"]


class Executor(Protocol[T, R]):
    """Runs one function over submitted tasks; see the module docstring.

    ``results`` yields ``(task, result or Lost)`` until every task submitted so far (also
    while iterating) is answered. ``activity`` says, for the progress display, which worker
    (a pid, or a distributed worker's address) is on which task and for how many seconds
    (None: idle). ``close(kill=True)`` abandons unfinished work (Ctrl+C, an error).
    """

    def __enter__(self) -> Executor[T, R]: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def start(self) -> None: ...

    def submit(self, task: T) -> None: ...

    def results(self) -> Iterator[tuple[T, R | Lost]]: ...

    def activity(self) -> Sequence[tuple[int | str, T | None, float | None]]: ...

    def close(self, *, kill: bool = False) -> None: ...


def local_executor(
    workers: int, timeout: float | None, max_memory: int | None = DEFAULT_MAX_MEMORY_MB
) -> Executor[Task, Result]:
    """The index's own executor: ``workers`` local processes (``pool.Pool``), each killed and
    its file recorded as failed when it crashes or runs past ``timeout`` seconds, each limited
    to ``max_memory`` MiB beyond its code (None: no limit)."""
    return worker_pool(workers, timeout, max_memory)


class InProcess(Generic[T, R]):
    """Runs the function in this process, one task after the other in the order submitted
    (for tests that watch the decoder). Nothing is isolated: a task that crashes the
    interpreter ends it, and an exception the function raises ends the run."""

    def __init__(self, function: Callable[[T], R]) -> None:
        self.function = function
        self.pending: collections.deque[T] = collections.deque()
        self.current: tuple[T, float] | None = None

    def __enter__(self) -> InProcess[T, R]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(kill=kind is not None)

    def start(self) -> None:
        return None

    def submit(self, task: T) -> None:
        self.pending.append(task)

    def results(self) -> Iterator[tuple[T, R | Lost]]:
        while self.pending:
            task = self.pending.popleft()
            self.current = (task, time.monotonic())
            try:
                result = self.function(task)
            finally:
                self.current = None
            yield task, result

    def activity(self) -> Sequence[tuple[int | str, T | None, float | None]]:
        if self.current is None:
            return [(os.getpid(), None, None)]
        task, started = self.current
        return [(os.getpid(), task, time.monotonic() - started)]

    def close(self, *, kill: bool = False) -> None:
        self.pending.clear()


def in_process_executor() -> Executor[Task, Result]:
    """The fingerprint stage run in this process (``InProcess``)."""
    return InProcess(_process_file)


def _process_file(task: Task) -> Result:
    from .fingerprint import files  # looked up at each call: tests replace it

    return files.process_file(task)
