"""The index's worker processes: the tasks they are sent, the results they send back, and how
they start. Imports nothing heavy (no SQLAlchemy, numpy or Pillow).

The workers' own code (``extract``: read, hash, decode, measure) needs numpy and Pillow, the
indexing process SQLAlchemy, and neither needs the other's. So ``dedupdb index`` can fork its
workers first, while it has loaded nothing but the command line (``start_early``): each
worker then imports and warms up its code while the indexing process imports SQLAlchemy,
opens the database and plans the run, instead of the two start-ups running one after the
other. Only when the run will surely have files to decode, so that a re-index that finds
nothing new starts no process and loads no decoder (``expects_work``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import sqlite3
import sys
import threading
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from .defaults import DEFAULT_MAX_MEMORY_MB, ENV_VAR, default_database_path
from .pool import Lost, Pool
from .walk import FileEntry

# The key under which an ``Indexed`` result carries a picture's packed local features
# (features.pack), which go to their own table, not to the image's row.
LOCAL_FEATURES_KEY = "local_features"


@dataclass(frozen=True)
class Task:
    """A file to read, hash and decode. ``known``: the 8-byte prefixes of the stored content
    hashes of files of this size (a move or an exact copy, recognised without decoding once the
    file is hashed); empty for most files, which are then read once, hashing as they decode."""

    root: bytes
    entry: FileEntry
    hash_size: int
    min_resolution: int
    known: frozenset[bytes] = frozenset()
    features: bool = False  # also extract local features (``index --features``)


@dataclass(frozen=True)
class Indexed:
    """A decoded and hashed image: the columns to store."""

    entry: FileEntry
    columns: dict[str, Any]


@dataclass(frozen=True)
class KnownContent:
    """Bytes the database already holds (a move or an exact copy): nothing was decoded."""

    entry: FileEntry
    content_hash: bytes


@dataclass(frozen=True)
class NotIndexed:
    """A file recorded in the failures table: unreadable (failed) or deliberately not indexed
    (``skipped``, e.g. below --min-resolution)."""

    entry: FileEntry
    reason: str
    skipped: bool = False


Result = Indexed | KnownContent | NotIndexed


def default_workers() -> int:
    """One worker per CPU this process may run on (a container or ``taskset`` may give it
    fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def worker_pool(
    workers: int, timeout: float | None, max_memory: int | None = DEFAULT_MAX_MEMORY_MB
) -> Pool[Task, Result]:
    """The processes that read, hash and decode files (``extract.process_file``). Each loads
    and warms up that code when it starts, unless it was forked from a process that had, then
    limits its memory to ``max_memory`` MiB beyond that (``limit_memory``; None: no limit)."""
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
    the root). Reads the database with Python's own sqlite3 module, read-only; anything
    unusual (a URL, an unreadable file, another schema) answers False, so that the run starts
    its workers when it has planned, as every re-index does."""
    path = os.path.abspath(os.fsencode(root))
    try:
        with os.scandir(path) as entries:
            if next(entries, None) is None:
                return False
    except OSError:
        return False
    value = db if db is not None else os.environ.get(ENV_VAR) or ""
    if "://" in value:
        return False
    database = Path(value).expanduser() if value else default_database_path()
    if not database.exists():
        return True
    try:
        connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        found = connection.execute("SELECT 1 FROM roots WHERE path = ?", (path,)).fetchone()
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return found is None


def lost_file(task: Task, lost: Lost) -> NotIndexed:
    """The failure recorded for a file whose worker died on it or was killed."""
    if lost.timeout is not None:
        reason = f"timed out: decoding took longer than {lost.timeout:g} s (see --timeout)"
    elif lost.error is not None:
        reason = f"dedupdb failed on it ({lost.error}); please report this"
    else:
        reason = f"the decoder crashed: {lost.reason}"
    return NotIndexed(task.entry, reason)


def _process(task: Task) -> Result:
    from . import extract  # loaded by ``_prepare``: a dictionary look-up

    return extract.process_file(task)


def _prepare(max_memory: int | None = None) -> None:
    """A worker's start: load and warm up the decode and hash code (once: nothing to do in a
    worker forked from a process that had), then limit its memory (``limit_memory``). A worker
    forked while the command paused the garbage collector to load its modules (``cli.main``)
    resumes it, leaving what its own imports made out of all collections, as the command does.
    """
    paused = not gc.isenabled()
    from . import extract

    extract.warm_up()
    if paused:
        gc.freeze()
        gc.enable()
    if max_memory is not None:
        limit_memory(max_memory)


# The limit this process set on itself (``limit_memory``), in MiB beyond its code; None: none.
_memory_limit: int | None = None


def limit_memory(megabytes: int) -> bool:
    """Cap this process's address space at its present size plus ``megabytes`` MiB.

    A decoder that needs more then fails its allocation (Pillow and numpy raise MemoryError),
    which costs only the file at hand: it is recorded as too large (``memory_limit`` names the
    limit), instead of one hostile file (a 13000x13000 PNG of 500 KB decodes to 500 MB) taking
    the machine's memory, or the kernel's out-of-memory killer taking a process. The address
    space, not the resident size, is what the kernel can cap (RLIMIT_AS); it is measured after
    the worker has loaded and warmed up its code, so the code's own mappings do not count
    against the budget. Linux only (elsewhere RLIMIT_AS is not enforced): False when not set.
    """
    global _memory_limit
    size = _address_space()
    if size is None:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = size + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft <= wanted:  # already lower: keep it
        return False
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    _memory_limit = megabytes
    return True


def memory_limit() -> int | None:
    """The memory (MiB beyond its code) this process limited itself to, or None."""
    return _memory_limit


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux's /proc), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None  # pragma: no cover - Linux only
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - no /proc
        return None
    return None  # pragma: no cover


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
        context.set_forkserver_preload(["__main__", "dedupdb.extract"])
        return context
    return multiprocessing.get_context("spawn")
