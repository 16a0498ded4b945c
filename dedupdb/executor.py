"""The execution seam: what runs the index's per-file work, wherever it runs.

Index planning decides *which* files need decoding; an ``Executor`` decides *where* that work
runs: today's local process pool (``pool.Pool``: one process per core, crash isolation,
timeouts), or a distributed engine's workers. Planning and writing never change with it: they
submit tasks, and take each task's result (or ``Lost``: the worker died, ran past its timeout
or raised) as it arrives, in completion order, committing each one as a checkpoint.

The function an executor runs is pure (a task in, a result out; no database access), so the
task and its result must be picklable: they cross a process or a network.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Protocol, TypeVar

from .pool import Lost

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Executor", "Lost"]


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
