"""The index pipeline: walk -> compare with the store -> fingerprint through an executor ->
commit.

Every file's result is committed on its own, so each committed row is a checkpoint: a run
killed at any moment loses at most the files in flight, and the next run skips everything
already stored (its size and mtime have not changed). The fingerprint stage runs wherever the
executor runs it (``executor``: local worker processes by default, this process for tests, a
distributed engine's workers); this process plans and is the only writer. It loads numpy and
Pillow only to warm up the workers it forks itself (none when given an executor started
early) or to decode in-process.

Stages, in order (each a small function, composed in ``index``):
1. ``plan``: walk the root and sort each file into unchanged / known-bad / to-process, and the
   stored rows the walk did not see into vanished.
2. ``fingerprint.process_file`` (through the executor): read the bytes once, hash them; a
   content hash the database already knows needs no decoding (a move or an exact copy);
   otherwise decode, hash, measure.
3. ``Writer``: one transaction per result (``store.images.ImageWriter``); moves update the row
   in place.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .defaults import DEFAULT_MAX_MEMORY_MB, DEFAULT_MIN_RESOLUTION, DEFAULT_TIMEOUT_S
from .errors import EmptyRootError, ParameterMismatchError
from .executor import Executor, Lost, in_process_executor, local_executor
from .fingerprint.records import (
    FingerprintSettings,
    Indexed,
    KnownContent,
    NotIndexed,
    Result,
    Task,
)
from .hashparams import HashParams
from .store import Store
from .store import images as stored
from .store.index_runs import begin_index_run, database_error, end_index_run
from .tracking import FAILED as RUN_FAILED
from .tracking import FINISHED, INDEX, INTERRUPTED, WORKING, Recorder
from .walk import FileEntry, WalkProblem, absolute_root, display, walk
from .workers import default_workers

# How many failures (and notes) the summary lists by name (all are in the database).
SUMMARY_FAILURE_LIMIT = 50


@dataclass(frozen=True)
class IndexOptions:
    """How to index; the CLI's options map one to one onto these fields."""

    excludes: tuple[str, ...] = ()
    follow_symlinks: bool = False
    workers: int | None = None  # None: one per CPU core this process may use
    hash_size: int | None = None  # None: what the database already uses, else 8
    rehash: bool = False
    retry_errors: bool = False
    min_resolution: int = DEFAULT_MIN_RESOLUTION
    # Take over from a run that looks alive but cannot be checked: one on another host, or in a
    # container that was killed (each container has its own host name).
    break_lock: bool = False
    # A file whose decoding takes longer is recorded as failed (its worker is killed); None: no
    # limit. Generous: a 100-megapixel TIFF decodes in a few seconds.
    timeout: float | None = DEFAULT_TIMEOUT_S
    # The memory (MiB) a worker may take for one file beyond its own code; a file that needs
    # more is recorded as too large (``fingerprint.files.limit_memory``). None: no limit.
    max_memory: int | None = DEFAULT_MAX_MEMORY_MB
    # Index a root that is now empty although images were indexed there (their rows are then
    # marked missing). Off by default: an empty folder is most often a drive not mounted.
    allow_empty: bool = False
    # Decode in this process instead of worker processes: for tests that watch the decoder.
    # A decoder that crashes then ends the whole run.
    in_process: bool = False
    # Also extract and store local features (features.extract) for `report --deep`.
    features: bool = False


@dataclass
class IndexSummary:
    """What one run did. ``failures`` names at most SUMMARY_FAILURE_LIMIT of the failures."""

    root: str
    new: int = 0
    changed: int = 0
    moved: int = 0
    unchanged: int = 0
    missing: int = 0
    skipped: int = 0
    failed: int = 0
    known_bad: int = 0  # failed or skipped in an earlier run, unchanged since
    seconds: float = 0.0
    interrupted: bool = False
    failures: list[dict[str, str]] = field(default_factory=list)
    # Files indexed although their decoder warned (``images.note``), and the first of them.
    noted: int = 0
    notes: list[dict[str, str]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.new + self.changed + self.moved + self.skipped + self.failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """Reported after each processed file (and once with done=0 when the plan is ready)."""

    done: int
    total: int
    failed: int
    path: str


ProgressCallback = Callable[[Progress], None]


# ----------------------------------------------------------------------------- plan


@dataclass
class Plan:
    to_process: list[FileEntry] = field(default_factory=list)
    unchanged: int = 0
    known_bad: int = 0
    reappeared: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)
    stale_failures: list[bytes] = field(default_factory=list)
    problems: list[WalkProblem] = field(default_factory=list)
    # Paths that had an image row / a failure row when planned: the writer skips the lookup
    # or the delete for a path in neither (a superset is safe, it only costs the query).
    stored_paths: frozenset[bytes] = frozenset()
    failure_paths: frozenset[bytes] = frozenset()


def plan(
    store: Store,
    root_id: int,
    root: bytes,
    options: IndexOptions,
    params: HashParams,
    recorder: Recorder | None = None,
) -> Plan:
    """Walk the root and decide what needs work, opening no file (only stat). ``recorder``
    hears how many files the walk has seen."""
    rows = stored.stored_files(store, root_id)
    failures = stored.recorded_failures(store, root_id)
    result = Plan()
    seen: set[bytes] = set()
    links = _apply_links(store, root_id, root)
    seen.update(links)
    entries = walk(
        root,
        excludes=options.excludes,
        follow_symlinks=options.follow_symlinks,
        on_problem=result.problems.append,
        skip=links,
    )
    for count, entry in enumerate(entries, start=1):
        seen.add(entry.relpath)
        if recorder is not None and not count & 255:
            recorder.seen = count
            recorder.tick()
        row = rows.get(entry.relpath)
        if (
            row is not None
            and (row.size, row.mtime_ns) == (entry.size, entry.mtime_ns)
            and row.hash_size == params.hash_size
            and not options.rehash  # new hash parameters or version: recompute everything
        ):
            result.unchanged += 1
            if not row.present:
                result.reappeared.append(row.id)
            continue
        bad = failures.get(entry.relpath)
        if bad == (entry.size, entry.mtime_ns) and not options.retry_errors:
            result.known_bad += 1
            continue
        result.to_process.append(entry)
    unreadable = [p.relpath for p in result.problems]
    # A problem already recorded, unchanged since, is known bad like a failed file.
    fresh = []
    for problem in result.problems:
        if (
            failures.get(problem.relpath) == (problem.size, problem.mtime_ns)
            and not options.retry_errors
        ):
            result.known_bad += 1
        else:
            fresh.append(problem)
    result.problems = fresh
    result.vanished = [
        row.id
        for relpath, row in rows.items()
        if row.present and relpath not in seen and not _below(relpath, unreadable)
    ]
    result.stale_failures = [
        relpath
        for relpath in failures
        if relpath not in seen and relpath not in unreadable and not _below(relpath, unreadable)
    ]
    result.stored_paths = frozenset(rows)
    result.failure_paths = frozenset(failures).union(p.relpath for p in result.problems)
    return result


def _apply_links(store: Store, root_id: int, root: bytes) -> set[bytes]:
    """Paths that `dedupdb apply` replaced by a link to their keeper and that still are that
    link: the walk skips them, so a hard link never stands in for its keeper. A link the user
    replaced by a real file is walked again as usual."""
    links: set[bytes] = set()
    for relpath, device, inode in stored.linked_files(store, root_id):
        try:
            st = os.lstat(os.path.join(root, relpath))
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or (st.st_dev, st.st_ino) == (device, inode):
            links.add(relpath)
    return links


def _below(relpath: bytes, folders: list[bytes]) -> bool:
    """True when relpath lies in one of the folders ('' is the root itself)."""
    return any(
        not f or relpath.startswith(f + b"/") or relpath.startswith(f + b"\\") for f in folders
    )


# ----------------------------------------------------------------------------- work


def run_tasks(
    tasks: Iterable[Task],
    workers: int,
    *,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    in_process: bool = False,
    max_memory: int | None = DEFAULT_MAX_MEMORY_MB,
) -> Iterator[Result]:
    """Results in completion order, each file processed in a worker process (``in_process``:
    in this one). A file whose worker crashed or ran past ``timeout`` is a failure."""
    executor = in_process_executor() if in_process else local_executor(workers, timeout, max_memory)
    with executor:
        for task in tasks:
            executor.submit(task)
        for task, outcome in executor.results():
            yield lost_file(task, outcome) if isinstance(outcome, Lost) else outcome


def lost_file(task: Task, lost: Lost) -> NotIndexed:
    """The failure recorded for a file whose worker died on it or was killed."""
    if lost.timeout is not None:
        reason = f"timed out: decoding took longer than {lost.timeout:g} s (see --timeout)"
    elif lost.error is not None:
        reason = f"dedupdb failed on it ({lost.error}); please report this"
    else:
        reason = f"the decoder crashed: {lost.reason}"
    return NotIndexed(task.entry, reason)


def warm_up() -> None:
    """Load and warm up the workers' code here, once, before forking workers that then inherit
    it (``fingerprint.warm_up``)."""
    from .fingerprint import compute

    compute.warm_up()


# ----------------------------------------------------------------------------- write


class Writer:
    """Commits each result (``store.images.ImageWriter``) and keeps the summary's counts."""

    def __init__(
        self,
        store: Store,
        root_id: int,
        root: bytes,
        settings: FingerprintSettings,
        vanished: Iterable[int] = (),
        stored_paths: frozenset[bytes] | None = None,
        failure_paths: frozenset[bytes] | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.rows = stored.ImageWriter(store, root_id, stored_paths, failure_paths)
        # Rows this run marked missing: one found again under a new path is moved, not missing.
        self.vanished = set(vanished)
        # Told of each failed file (its path and why), as it is recorded.
        self.on_failure: Callable[[str, str], None] | None = None

    def write(self, result: Result, summary: IndexSummary) -> Task | None:
        """Commit one result; returns a task when the file must be decoded after all (its
        content hash matched only a prefix of a stored one, or the stored copy went away)."""
        if isinstance(result, Indexed):
            _count_note(result, summary)
            if self.rows.write_fingerprint(result.entry, result.fingerprint):
                summary.changed += 1
            else:
                summary.new += 1
            return None
        if isinstance(result, KnownContent):
            return self._write_known(result, summary)
        self.rows.write_failure(result.entry, result.reason, skipped=result.skipped)
        if result.skipped:
            summary.skipped += 1
            return None
        summary.failed += 1
        if len(summary.failures) < SUMMARY_FAILURE_LIMIT:
            path = display(result.entry.relpath)
            summary.failures.append({"path": path, "reason": result.reason})
        if self.on_failure is not None:
            self.on_failure(display(result.entry.relpath), result.reason)
        return None

    def _write_known(self, result: KnownContent, summary: IndexSummary) -> Task | None:
        """Bytes already indexed: move the missing row here, or copy the donor's columns."""
        written = self.rows.write_known(result.entry, result.content_hash, self.settings.hash_size)
        if written.outcome is stored.Known.UNKNOWN:  # a prefix collision: decode after all
            return Task(self.root, result.entry, self.settings)
        if written.outcome is stored.Known.MOVED:
            summary.moved += 1
            if written.moved_id in self.vanished:
                self.vanished.discard(written.moved_id)
                summary.missing -= 1
        elif written.outcome is stored.Known.CHANGED:
            summary.changed += 1
        else:
            summary.new += 1
        return None


def _count_note(result: Indexed, summary: IndexSummary) -> None:
    note = result.fingerprint.note
    if note:
        summary.noted += 1
        if len(summary.notes) < SUMMARY_FAILURE_LIMIT:
            summary.notes.append({"path": display(result.entry.relpath), "note": note})


# ----------------------------------------------------------------------------- run


def index(
    store: Store,
    root: str | os.PathLike[str] | bytes,
    options: IndexOptions | None = None,
    progress: ProgressCallback | None = None,
    *,
    executor: Executor[Task, Result] | None = None,
) -> IndexSummary:
    """Index one folder tree into the store and return what happened.

    ``executor``: what runs the fingerprint stage, started by the caller (``workers
    .start_early``: the command forks its local workers before it loads the database code, so
    that they start up while it does; or a distributed engine's); the caller closes it.
    Without it, the run starts its own local workers once it knows what to decode.

    Raises ``RootNotFoundError``, ``EmptyRootError`` (the folder is empty but images were
    indexed there, unless ``options.allow_empty``), ``ParameterMismatchError`` or
    ``DatabaseBusyError``; bad files never raise, they are recorded in the failures table and
    counted.
    """
    options = options or IndexOptions()
    started = time.monotonic()
    root_bytes = absolute_root(root)
    if options.features:
        from .features import require_opencv  # here: a plain re-index loads no numpy or Pillow

        require_opencv()
    try:
        params = resolve_params(store, options)
        root_id = stored.ensure_root(store, root_bytes)
        if not options.allow_empty:
            _refuse_empty_root(store, root_id, root_bytes)
        run_id = begin_index_run(store, root_id, break_lock=options.break_lock)
    except Exception as err:
        translated = database_error(store, err)
        if translated is None:
            raise
        raise translated from err
    summary = IndexSummary(root=display(root_bytes))
    recorder: Recorder | None = None
    ended, why = RUN_FAILED, None
    try:
        recorder = Recorder.start(
            store, INDEX, summary.root, index_run_id=run_id, counts=lambda: _counts(summary)
        )
        _index_root(
            store, root_id, root_bytes, options, params, summary, progress, executor, recorder
        )
        ended = FINISHED
    except KeyboardInterrupt:
        summary.interrupted = True
        ended = INTERRUPTED
        raise
    except BaseException as err:
        translated = database_error(store, err)  # e.g. locked for longer than the busy timeout
        if translated is None:
            why = f"{type(err).__name__}: {err}"
            raise
        summary.interrupted = True
        why = str(translated)
        raise translated from err
    finally:
        summary.seconds = round(time.monotonic() - started, 3)
        end_index_run(
            store, run_id, root_id, interrupted=summary.interrupted, summary=summary.to_dict()
        )
        if recorder is not None:
            recorder.finish(ended, why)
    return summary


def _counts(summary: IndexSummary) -> dict[str, int]:
    """The counts a run's progress row shows, from its summary so far."""
    return {
        "new": summary.new,
        "changed": summary.changed,
        "moved": summary.moved,
        "unchanged": summary.unchanged,
        "skipped": summary.skipped,
        "failed": summary.failed,
    }


def _index_root(
    store: Store,
    root_id: int,
    root: bytes,
    options: IndexOptions,
    params: HashParams,
    summary: IndexSummary,
    progress: ProgressCallback | None,
    executor: Executor[Task, Result] | None,
    recorder: Recorder,
) -> None:
    work = plan(store, root_id, root, options, params, recorder)
    summary.unchanged, summary.known_bad = work.unchanged, work.known_bad
    summary.missing = len(work.vanished)
    recorder.seen = work.unchanged + work.known_bad + len(work.to_process)
    _apply_plan(store, root_id, work, summary, recorder)
    # Known content is copied from its row instead of decoded again: not with --rehash, whose
    # point is to recompute what the stored rows hold (a new hash version, say).
    recompute = options.rehash or not work.to_process  # (nothing to do: a re-index)
    known = {} if recompute else stored.known_prefixes(store, params.hash_size)
    none: frozenset[bytes] = frozenset()
    settings = FingerprintSettings(params.hash_size, options.min_resolution, options.features)
    tasks = [Task(root, e, settings, known.get(e.size, none)) for e in work.to_process]
    if progress:
        progress(Progress(0, len(tasks), 0, ""))
    recorder.phase, recorder.planned = WORKING, len(tasks)
    recorder.flush()
    writer = Writer(
        store, root_id, root, settings, work.vanished, work.stored_paths, work.failure_paths
    )
    writer.on_failure = recorder.error
    if options.in_process:  # in walk order, one after the other
        with in_process_executor() as here:
            _run(here, tasks, writer, summary, progress, recorder)
        return
    if not tasks:
        return
    # Largest first: the run's last files, which one worker finishes while the others have
    # nothing left to do, are then the quickest ones.
    tasks.sort(key=lambda t: t.entry.size, reverse=True)
    if executor is not None:
        _run(executor, tasks, writer, summary, progress, recorder)
        return
    warm_up()  # once here, inherited by the workers forked next
    workers = options.workers or default_workers()
    with local_executor(workers, options.timeout, options.max_memory) as own:
        _run(own, tasks, writer, summary, progress, recorder)


def _run(
    executor: Executor[Task, Result],
    tasks: list[Task],
    writer: Writer,
    summary: IndexSummary,
    progress: ProgressCallback | None,
    recorder: Recorder,
) -> None:
    """Submit the tasks, and commit each result as it arrives."""
    for task in tasks:
        executor.submit(task)
    recorder.workers = lambda: _activity(executor)
    done = 0
    for task, outcome in executor.results():
        result = lost_file(task, outcome) if isinstance(outcome, Lost) else outcome
        follow_up = writer.write(result, summary)
        if follow_up is not None:  # run by the executor too: it may crash like any other
            executor.submit(follow_up)
            continue
        done += 1
        recorder.bytes_read += task.entry.size
        _report(progress, recorder, done, len(tasks), summary, result)


def _activity(
    executor: Executor[Task, Result],
) -> list[tuple[int | str, str | None, float | None]]:
    """Each worker (pid or address), the file it is on and for how long (for the progress
    row)."""
    return [
        (worker, None if task is None else display(task.entry.relpath), seconds)
        for worker, task, seconds in executor.activity()
    ]


def _report(
    progress: ProgressCallback | None,
    recorder: Recorder,
    done: int,
    total: int,
    summary: IndexSummary,
    last: Result,
) -> None:
    recorder.done = done
    recorder.tick()
    if progress:
        progress(Progress(done, total, summary.failed, display(last.entry.relpath)))


def _apply_plan(
    store: Store, root_id: int, work: Plan, summary: IndexSummary, recorder: Recorder | None = None
) -> None:
    """Mark vanished rows missing (kept, not purged), returning ones present; drop stale
    failures; record the folders the walk could not read."""
    stored.update_presence(store, root_id, work.vanished, work.reappeared, work.stale_failures)
    writer = Writer(store, root_id, b"", FingerprintSettings())
    if recorder is not None:
        writer.on_failure = recorder.error
    for problem in work.problems:
        entry = FileEntry(problem.relpath, problem.size, problem.mtime_ns, 0, 0)
        writer.write(NotIndexed(entry, problem.reason, skipped=problem.skipped), summary)


def resolve_params(store: Store, options: IndexOptions) -> HashParams:
    """The hash parameters for this run; refuses a mismatch with the database unless rehash."""
    before = stored.stored_hash_params(store)
    wanted = HashParams(options.hash_size or (before.hash_size if before else 8))
    if before is not None and before != wanted and not options.rehash:
        raise ParameterMismatchError(
            f"this database was indexed with hash size {before.hash_size} (hash version "
            f"{before.version}); this run asks for hash size {wanted.hash_size} "
            f"(version {wanted.version})",
            "add --rehash to recompute every image with the new parameters, or use another --db",
        )
    if before != wanted:
        stored.save_hash_params(store, wanted)
    return wanted


def _refuse_empty_root(store: Store, root_id: int, root: bytes) -> None:
    """An unmounted drive leaves its mount point an empty folder: indexing it would mark every
    image of the root missing. Harmless (rows are kept) but alarming and almost never meant."""
    try:
        with os.scandir(root) as entries:
            if next(entries, None) is not None:
                return
    except OSError:  # unreadable: the walk records why
        return
    present = stored.count_present(store, root_id)
    if present:
        raise EmptyRootError(
            f"{display(root)} is empty, but {present:,} images were indexed there; "
            "nothing was changed",
            "is the drive or share mounted? If the images are really gone, "
            "index with --allow-empty to mark them missing",
        )
