"""The index's local worker processes (the executor ``executor.local_executor`` makes): how
they start, and when. Imports nothing heavy (no SQLAlchemy, numpy or Pillow).

The workers' own code (``fingerprint.process_file``: read, hash, decode, measure) needs numpy
and Pillow, the indexing process SQLAlchemy, and neither needs the other's. So ``dedupdb
index`` can fork its workers first, while it has loaded nothing but the command line
(``start_early``): each worker then imports and warms up its code while the indexing process
imports SQLAlchemy, opens the database and plans the run, instead of the two start-ups running
one after the other. Only when the run will surely have files to decode, so that a re-index
that finds nothing new starts no process and loads no decoder (``expects_work``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from multiprocessing.context import BaseContext

from . import collector
from .defaults import DEFAULT_MAX_MEMORY_MB
from .fingerprint.records import Result, Task
from .pool import Pool
from .store.peek import knows_root


def default_workers() -> int:
    """One worker per CPU this process may run on (a container or ``taskset`` may give it
    fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def worker_pool(
    workers: int, timeout: float | None, max_memory: int | None = DEFAULT_MAX_MEMORY_MB
) -> Pool[Task, Result]:
    """The processes that read, hash and decode files (``fingerprint.process_file``). Each
    loads and warms up that code when it starts, unless it was forked from a process that had,
    then limits its memory to ``max_memory`` MiB beyond that (``files.limit_memory``; None: no
    limit)."""
    return Pool(
        _process,
        workers,
        _pool_context(),
        initializer=_prepare,
        initargs=(max_memory,),
        timeout=timeout,
    )


def start_early(
    workers: int | None,
    timeout: float | None,
    db: str | None,
    root: str | bytes,
    max_memory: int | None = DEFAULT_MAX_MEMORY_MB,
) -> Pool[Task, Result] | None:
    """The worker pool, its processes forked now, if the run will have files to decode
    (``expects_work``); else None. Call it before loading anything heavy, close it after."""
    if not expects_work(db, root):
        return None
    pool = worker_pool(workers or default_workers(), timeout, max_memory)
    try:
        pool.start()
    except BaseException:
        pool.close()
        raise
    return pool


def expects_work(db: str | None, root: str | bytes) -> bool:
    """Whether indexing ``root`` into ``db`` will surely decode files: the root holds something
    and the database has never indexed it (the database does not exist yet, or has no row for
    the root). Anything unusual (a URL, an unreadable file, another schema) answers False, so
    that the run starts its workers when it has planned, as every re-index does."""
    path = os.path.abspath(os.fsencode(root))
    try:
        with os.scandir(path) as entries:
            if next(entries, None) is None:
                return False
    except OSError:
        return False
    return knows_root(db, path) is False


def _process(task: Task) -> Result:
    from .fingerprint import files  # loaded by ``_prepare``: a dictionary look-up

    return files.process_file(task)


def _prepare(max_memory: int | None = None) -> None:
    """A worker's start: load and warm up the fingerprint code (once: nothing to do in a
    worker forked from a process that had), then limit its memory (``files.limit_memory``). A
    worker forked while the command paused the garbage collector to load its modules resumes
    it once it has loaded its own (``collector``), as the command does.
    """
    paused = collector.paused()
    from .fingerprint import compute, files

    compute.warm_up()
    if paused:
        collector.resume()
    if max_memory is not None:
        files.limit_memory(max_memory)


def _pool_context() -> BaseContext:
    """How worker processes start: forked where that is safe, else from a fork server.

    Start-up cost decides whether 2 workers are twice as fast as one on a run of a few
    hundred files: a forked worker is ready in milliseconds, while a fresh interpreter spends
    0.5-2 s importing numpy and Pillow. Forking is safe on Linux while this process runs a
    single thread (no lock can be held by a thread that vanishes in the child; the children
    never touch inherited database connections). Anywhere else, a fork server imports the
    worker code once and forks ready workers from it.
    """
    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", "dedupdb.fingerprint.files"])
        return context
    return multiprocessing.get_context("spawn")
