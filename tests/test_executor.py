"""The execution seam: indexing through another ``Executor`` than the local process pool (here
one over ``concurrent.futures``, as a distributed engine's client would be) plans, writes and
stores exactly what the pool does; only where the work runs changes."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import pytest
from conftest import save_photo
from sqlalchemy import select

from dedupdb.executor import Executor, Lost, in_process_executor, local_executor
from dedupdb.fingerprint import Result, Task, process_file
from dedupdb.indexing import IndexOptions, IndexSummary, index
from dedupdb.store import Store, open_store
from dedupdb.store.schema import Failure, Image

T = TypeVar("T")
R = TypeVar("R")

# Columns that depend on where and when a row (or its file: two trees are compared) was
# written, not on the file's content.
VARYING = {"id", "root_id", "indexed_at", "mtime_ns", "device", "inode"}


class FuturesExecutor(Generic[T, R]):
    """An ``Executor`` over any ``concurrent.futures.Executor``: tasks are submitted as they
    come, results taken as they complete (``wait(FIRST_COMPLETED)``), an exception becomes
    ``Lost``. No crash isolation or timeouts of its own: whatever the engine gives."""

    def __init__(
        self, engine: concurrent.futures.Executor, function: Callable[[T], R], name: str
    ) -> None:
        self.engine = engine
        self.function = function
        self.name = name
        self.futures: dict[concurrent.futures.Future[R], tuple[T, float]] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> FuturesExecutor[T, R]:
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
        future = self.engine.submit(self.function, task)
        with self.lock:
            self.futures[future] = (task, time.monotonic())

    def results(self) -> Iterator[tuple[T, R | Lost]]:
        while self.futures:
            done, _ = concurrent.futures.wait(
                list(self.futures), return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                with self.lock:
                    task, _ = self.futures.pop(future)
                error = future.exception()
                yield task, (Lost(error=repr(error)) if error is not None else future.result())

    def activity(self) -> Sequence[tuple[int | str, T | None, float | None]]:
        now = time.monotonic()
        with self.lock:
            running = [(task, now - since) for f, (task, since) in self.futures.items()]
        return [(f"{self.name}-{n}", task, seconds) for n, (task, seconds) in enumerate(running)]

    def close(self, *, kill: bool = False) -> None:
        self.engine.shutdown(wait=not kill, cancel_futures=kill)


def process_engine() -> Executor[Task, Result]:
    """Two processes of ``ProcessPoolExecutor``: tasks and results cross a pipe, pickled."""
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    engine = concurrent.futures.ProcessPoolExecutor(2, mp_context=context)
    return FuturesExecutor(engine, process_file, "process")


def thread_engine() -> Executor[Task, Result]:
    """One thread of this process. One, because ``process_file`` captures the decoders'
    messages on this process's standard error: two threads would capture each other's."""
    return FuturesExecutor(concurrent.futures.ThreadPoolExecutor(1), process_file, "thread")


def library(root: Path) -> Path:
    """Photos of several formats and sizes, a file that is not a picture, a tiny one."""
    for seed in range(5):
        save_photo(root / f"p{seed}.jpg", seed, (320 + 40 * seed, 240), quality=90)
    save_photo(root / "sub" / "wide.png", 7, (500, 200))
    save_photo(root / "sub" / "still.webp", 8, (300, 300))
    save_photo(root / "tiny.jpg", 9, (20, 16))  # under the 32 px floor: skipped
    (root / "notes.jpg").write_text("not a picture")
    return root


def rows(store: Store) -> dict[bytes, dict[str, Any]]:
    with store.session() as session:
        found = session.execute(select(Image)).scalars()
        return {
            image.relpath: {
                c.key: getattr(image, c.key)
                for c in Image.__table__.columns
                if c.key not in VARYING
            }
            for image in found
        }


def failures(store: Store) -> dict[bytes, tuple[str, str]]:
    with store.session() as session:
        return {f.relpath: (f.kind, f.reason) for f in session.execute(select(Failure)).scalars()}


def counts(summary: IndexSummary) -> tuple[int, ...]:
    return (
        summary.new,
        summary.changed,
        summary.moved,
        summary.unchanged,
        summary.missing,
        summary.skipped,
        summary.failed,
    )


def index_twice(
    store: Store, root: Path, make: Callable[[], Executor[Task, Result]] | None
) -> list[tuple[int, ...]]:
    """A first run, then one after a move, an exact copy and a change (a known content is
    recognised without decoding; a changed file replaces its row); each run's counts."""
    done = []
    for step in range(2):
        if step:
            (root / "p0.jpg").rename(root / "sub" / "moved.jpg")
            shutil.copy2(root / "p1.jpg", root / "copy of p1.jpg")
            save_photo(root / "p2.jpg", 42, (320, 240), quality=80)
            st = (root / "p2.jpg").stat()
            os.utime(root / "p2.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        if make is None:
            summary = index(store, root, IndexOptions(workers=2))
        else:
            with make() as executor:
                summary = index(store, root, IndexOptions(), executor=executor)
        done.append(counts(summary))
    return done


@pytest.mark.parametrize("make", [process_engine, thread_engine, in_process_executor])
def test_another_executor_stores_the_same_rows_as_the_pool(
    store: Store, tmp_path: Path, make: Callable[[], Executor[Task, Result]]
) -> None:
    here = index_twice(store, library(tmp_path / "a"), make)
    reference = open_store(tmp_path / "pool.sqlite")
    try:
        there = index_twice(reference, library(tmp_path / "b"), None)
        assert here == there == [(7, 0, 0, 0, 0, 1, 1), (1, 1, 1, 5, 0, 0, 0)]
        assert rows(store) == rows(reference)
        assert failures(store) == failures(reference)
    finally:
        reference.close()


def test_the_local_executor_is_the_crash_isolated_pool(tmp_path: Path) -> None:
    """``local_executor`` runs each task in a worker process that may die on it: the task is
    answered ``Lost`` and the others go on."""
    root = tmp_path / "photos"
    save_photo(root / "a.jpg", 1)
    entry = next(iter(__import__("dedupdb.walk", fromlist=["walk"]).walk(os.fsencode(root))))
    with local_executor(1, 30.0, None) as executor:
        executor.submit(Task(os.fsencode(root), entry))
        ((task, result),) = list(executor.results())
        assert task.entry == entry and not isinstance(result, Lost)
        assert executor.activity() and all(t is None for _, t, _ in executor.activity())
