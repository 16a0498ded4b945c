"""The index pipeline: walk -> compare with the store -> read, hash, decode in a pool -> commit.

Every file's result is committed on its own, so each committed row is a checkpoint: a run
killed at any moment loses at most the files in flight, and the next run skips everything
already stored (its size and mtime have not changed). Reading and decoding happen in worker
processes (``workers``, running ``extract``); this process is the only writer. It loads
numpy and Pillow only to warm up the workers it forks itself (none when given a pool started
early) or to decode in-process.

Stages, in order (each a small function, composed in ``index``):
1. ``plan``: walk the root and sort each file into unchanged / known-bad / to-process, and the
   stored rows the walk did not see into vanished.
2. ``extract.process_file`` (in workers): read the bytes once, hash them; a content hash the
   database already knows needs no decoding (a move or an exact copy); otherwise decode, hash,
   measure.
3. ``Writer``: one transaction per result; moves update the row in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .defaults import DEFAULT_MAX_MEMORY_MB, DEFAULT_MIN_RESOLUTION, DEFAULT_TIMEOUT_S
from .errors import (
    DatabaseBusyError,
    EmptyRootError,
    ParameterMismatchError,
)
from .executor import Executor
from .hashparams import HashParams
from .pool import Lost
from .store import (
    HASH_PARAMS_KEY,
    Store,
    process_alive,
    running_apply,
    translate_operational_error,
)
from .store.schema import (
    FAILED,
    LINKED,
    MISSING,
    PRESENT,
    SKIPPED,
    Failure,
    Image,
    LocalFeatures,
    Root,
    Run,
)
from .tracking import FAILED as RUN_FAILED
from .tracking import FINISHED, INDEX, INTERRUPTED, WORKING, Recorder
from .walk import FileEntry, WalkProblem, absolute_root, display, walk
from .workers import (
    LOCAL_FEATURES_KEY,
    Indexed,
    KnownContent,
    NotIndexed,
    Result,
    Task,
    default_workers,
    lost_file,
    worker_pool,
)

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
    # more is recorded as too large (``workers.limit_memory``). None: no limit.
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
    session: Session,
    root_id: int,
    root: bytes,
    options: IndexOptions,
    params: HashParams,
    recorder: Recorder | None = None,
) -> Plan:
    """Walk the root and decide what needs work, opening no file (only stat). ``recorder``
    hears how many files the walk has seen."""
    # The result rows themselves (named tuples): one object per stored image, no copies.
    rows: dict[bytes, Any] = {
        r.relpath: r
        for r in session.execute(
            select(
                Image.id, Image.relpath, Image.size, Image.mtime_ns, Image.status, Image.hash_size
            ).where(Image.root_id == root_id)
        )
    }
    failures = {
        f.relpath: (f.size, f.mtime_ns)
        for f in session.execute(
            select(Failure.relpath, Failure.size, Failure.mtime_ns).where(
                Failure.root_id == root_id
            )
        )
    }
    result = Plan()
    seen: set[bytes] = set()
    links = _apply_links(session, root_id, root)
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
            if row.status != PRESENT:
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
        if row.status == PRESENT and relpath not in seen and not _below(relpath, unreadable)
    ]
    result.stale_failures = [
        relpath
        for relpath in failures
        if relpath not in seen and relpath not in unreadable and not _below(relpath, unreadable)
    ]
    result.stored_paths = frozenset(rows)
    result.failure_paths = frozenset(failures).union(p.relpath for p in result.problems)
    return result


def _apply_links(session: Session, root_id: int, root: bytes) -> set[bytes]:
    """Paths that `dedupdb apply` replaced by a link to their keeper and that still are that
    link: the walk skips them, so a hard link never stands in for its keeper. A link the user
    replaced by a real file is walked again as usual."""
    links: set[bytes] = set()
    for relpath, device, inode in session.execute(
        select(Image.relpath, Image.device, Image.inode).where(
            Image.root_id == root_id, Image.status == LINKED
        )
    ):
        try:
            st = os.lstat(os.path.join(root, relpath))
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or (_signed64(st.st_dev), _signed64(st.st_ino)) == (
            device,
            inode,
        ):
            links.add(relpath)
    return links


def _below(relpath: bytes, folders: list[bytes]) -> bool:
    """True when relpath lies in one of the folders ('' is the root itself)."""
    return any(
        not f or relpath.startswith(f + b"/") or relpath.startswith(f + b"\\") for f in folders
    )


# ----------------------------------------------------------------------------- work


CONTENT_COLUMNS = (
    "content_hash", "width", "height", "content_width", "content_height", "format", "mode",
    "bit_depth", "lossless", "frames", "orientation", "taken_at", "camera_make",
    "camera_model", "exif_tags", "note", "hash_size",
    "phash", "dhash", "ahash", "whash", "crop_phash", "crop_colour", "sharpness",
    "low_information", "colour", "thumb", "jpeg_quant", "dct_sample",
)  # fmt: skip


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
    if in_process:
        from .extract import process_file

        yield from (process_file(t) for t in tasks)
        return
    with worker_pool(workers, timeout, max_memory) as pool:
        for task in tasks:
            pool.submit(task)
        for task, outcome in pool.results():
            yield lost_file(task, outcome) if isinstance(outcome, Lost) else outcome


def warm_up() -> None:
    """Load and warm up the workers' code here, once, before forking workers that then inherit
    it (``extract.warm_up``)."""
    from .extract import warm_up as warm_up_extract

    warm_up_extract()


# ----------------------------------------------------------------------------- write


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Writer:
    """Commits each result in its own transaction and keeps the summary's counts."""

    def __init__(
        self,
        store: Store,
        root_id: int,
        root: bytes,
        params: HashParams,
        vanished: Iterable[int] = (),
        stored_paths: frozenset[bytes] | None = None,
        failure_paths: frozenset[bytes] | None = None,
        min_resolution: int = DEFAULT_MIN_RESOLUTION,
        features: bool = False,
    ) -> None:
        self.store = store
        self.min_resolution = min_resolution
        self.features = features
        self.root_id = root_id
        self.root = root
        self.params = params
        # Rows this run marked missing: one found again under a new path is moved, not missing.
        self.vanished = set(vanished)
        self._upserts: dict[tuple[str, ...], Any] = {}
        self._driver_statements: dict[tuple[str, ...], tuple[str, list[tuple[str, Any]]]] = {}
        # What the plan saw (None: unknown, always query). Each path is written once a run,
        # so a path without a row or failure when planned has none until its own write.
        self.stored_paths = stored_paths
        self.failure_paths = failure_paths
        # Built once with the path bound at execution: constructing a WHERE clause per file
        # (coercions, a fresh cache key) cost more than running it.
        images, failures = cast(Table, Image.__table__), cast(Table, Failure.__table__)
        self._row_at_path = select(images.c.id).where(
            images.c.root_id == self.root_id, images.c.relpath == bindparam("path")
        )
        self._delete_failure = delete(failures).where(
            failures.c.root_id == self.root_id, failures.c.relpath == bindparam("path")
        )
        # Told of each failed file (its path and why), as it is recorded.
        self.on_failure: Callable[[str, str], None] | None = None

    def write(self, result: Result, summary: IndexSummary) -> Task | None:
        """Commit one result; returns a task when the file must be decoded after all (its
        content hash matched only a prefix of a stored one, or the stored copy went away)."""
        if isinstance(result, Indexed):
            _count_note(result, summary)
            if LOCAL_FEATURES_KEY in result.columns:
                result = self._store_features(result)
            if self._insert_new_sqlite(result.entry, result.columns):
                summary.new += 1
                return None
            # Elsewhere (PostgreSQL, a changed file, a path with a failure row) on a plain Core
            # connection: one transaction, up to three statements, no ORM session's set-up.
            with self.store.engine.begin() as conn:
                existed = self._upsert_image(conn, result.entry, result.columns)
            if existed:
                summary.changed += 1
            else:
                summary.new += 1
            return None
        with self.store.transaction() as session:
            if isinstance(result, KnownContent):
                return self._write_known(session, result, summary)
            self._write_failure(session, result)
        if result.skipped:
            summary.skipped += 1
        else:
            summary.failed += 1
            if len(summary.failures) < SUMMARY_FAILURE_LIMIT:
                summary.failures.append(
                    {"path": display(result.entry.relpath), "reason": result.reason}
                )
            if self.on_failure is not None:
                self.on_failure(display(result.entry.relpath), result.reason)
        return None

    def _store_features(self, result: Indexed) -> Indexed:
        """Store the local features a worker extracted (one row per content hash, replaced
        if present) and return the result without them."""
        columns = dict(result.columns)
        row = columns.pop(LOCAL_FEATURES_KEY)
        table = cast(Table, LocalFeatures.__table__)
        insert = self.store.insert(table)
        values = {"content_hash": columns["content_hash"], **row}
        statement = insert.on_conflict_do_update(
            index_elements=["content_hash"], set_={k: insert.excluded[k] for k in row}
        )
        with self.store.engine.begin() as conn:
            conn.execute(statement, values)
        return Indexed(result.entry, columns)

    def _insert_new_sqlite(self, entry: FileEntry, columns: dict[str, Any]) -> bool:
        """On SQLite, store the row of a path the plan knows has no row and no failure through
        the driver's connection: the same compiled upsert, parameters converted by the
        columns' own types, one transaction, but without SQLAlchemy's per-execution set-up
        (half the writer's CPU per file). False, doing nothing, in every other case."""
        if (
            self.store.engine.dialect.name != "sqlite"
            or self.stored_paths is None
            or entry.relpath in self.stored_paths
            or self.failure_paths is None
            or entry.relpath in self.failure_paths
        ):
            return False
        values = self._row_values(entry, columns)
        sql, binds = self._driver_statement(tuple(values))
        params = [values[n] if convert is None else convert(values[n]) for n, convert in binds]
        connection = self.store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, params)
            finally:
                cursor.close()
            connection.commit()
        except sqlite3.Error as err:
            connection.rollback()
            # As SQLAlchemy reports it, so that "database is locked" is handled as usual.
            raise OperationalError(sql, params, err) from err
        finally:
            connection.close()
        return True

    def _driver_statement(self, keys: tuple[str, ...]) -> tuple[str, list[tuple[str, Any]]]:
        """The upsert for these columns compiled for the engine's dialect (positional
        parameters), with the name and bind processor of each parameter, built once."""
        built = self._driver_statements.get(keys)
        if built is None:
            dialect = self.store.engine.dialect
            compiled = self._upsert_statement(keys).compile(dialect=dialect, column_keys=list(keys))
            names = list(compiled.positiontup or ())
            binds = [(n, compiled.binds[n].type.bind_processor(dialect)) for n in names]
            built = self._driver_statements[keys] = (compiled.string, binds)
        return built

    def _row_values(self, entry: FileEntry, columns: dict[str, Any]) -> dict[str, Any]:
        return {
            **columns,
            "root_id": self.root_id,
            "relpath": entry.relpath,
            "display_path": display(entry.relpath),
            "status": PRESENT,
            "size": entry.size,
            "mtime_ns": entry.mtime_ns,
            "device": _signed64(entry.device),
            "inode": _signed64(entry.inode),
            "indexed_at": _now(),
        }

    def _upsert_image(
        self, session: Session | Connection, entry: FileEntry, columns: dict[str, Any]
    ) -> bool:
        """Insert or replace the row at this path; True when a row was already there."""
        path = {"path": entry.relpath}
        existing = None
        if self.stored_paths is None or entry.relpath in self.stored_paths:
            existing = session.execute(self._row_at_path, path).scalar_one_or_none()
        values = self._row_values(entry, columns)
        session.execute(self._upsert_statement(tuple(values)), values)
        if self.failure_paths is None or entry.relpath in self.failure_paths:
            session.execute(self._delete_failure, path)
        return existing is not None

    def _upsert_statement(self, keys: tuple[str, ...]) -> Any:
        """INSERT ... ON CONFLICT (root_id, relpath) DO UPDATE for these columns, built once.

        The values are bound at execution: building the statement with ``.values(...)`` for
        each file (30-odd columns coerced, the EXCLUDED alias rebuilt, a new cache key) cost
        more CPU than decoding a photo's hashes.
        """
        statement = self._upserts.get(keys)
        if statement is None:
            insert = self.store.insert(Image.__table__)
            statement = insert.on_conflict_do_update(
                index_elements=["root_id", "relpath"],
                set_={k: insert.excluded[k] for k in keys if k not in ("root_id", "relpath")},
            )
            self._upserts[keys] = statement
        return statement

    def _write_known(
        self, session: Session, result: KnownContent, summary: IndexSummary
    ) -> Task | None:
        """Bytes already indexed: move the missing row here, or copy the donor's columns."""
        entry = result.entry
        donors = session.execute(
            select(Image)
            .where(Image.content_hash == result.content_hash)
            .where(Image.hash_size == self.params.hash_size)
            .order_by(Image.root_id != self.root_id, Image.status != MISSING, Image.id)
        ).scalars()
        donor = next(iter(donors), None)
        at_path = session.execute(
            select(Image.id).where(Image.root_id == self.root_id, Image.relpath == entry.relpath)
        ).scalar_one_or_none()
        if donor is None:  # a prefix collision, or the donor was pruned meanwhile: decode
            return Task(
                self.root,
                entry,
                self.params.hash_size,
                self.min_resolution,
                features=self.features,
            )
        if donor.root_id == self.root_id and donor.status == MISSING and at_path is None:
            donor.relpath = entry.relpath
            donor.display_path = display(entry.relpath)
            donor.status = PRESENT
            donor.size, donor.mtime_ns = entry.size, entry.mtime_ns
            donor.device, donor.inode = _signed64(entry.device), _signed64(entry.inode)
            session.execute(
                delete(Failure).where(
                    Failure.root_id == self.root_id, Failure.relpath == entry.relpath
                )
            )
            summary.moved += 1
            if donor.id in self.vanished:
                self.vanished.discard(donor.id)
                summary.missing -= 1
            return None
        columns = {name: getattr(donor, name) for name in CONTENT_COLUMNS}
        if self._upsert_image(session, entry, columns):
            summary.changed += 1
        else:
            summary.new += 1
        return None

    def _write_failure(self, session: Session, result: NotIndexed) -> None:
        entry = result.entry
        # A file that changed into something unreadable no longer has the stored content.
        session.execute(
            delete(Image).where(Image.root_id == self.root_id, Image.relpath == entry.relpath)
        )
        values = {
            "root_id": self.root_id,
            "relpath": entry.relpath,
            "display_path": display(entry.relpath),
            "kind": SKIPPED if result.skipped else FAILED,
            "reason": result.reason,
            "size": entry.size,
            "mtime_ns": entry.mtime_ns,
            "recorded_at": _now(),
        }
        statement = self.store.insert(Failure).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["root_id", "relpath"],
                set_={k: statement.excluded[k] for k in values if k not in ("root_id", "relpath")},
            )
        )


def _count_note(result: Indexed, summary: IndexSummary) -> None:
    note = result.columns.get("note")
    if note:
        summary.noted += 1
        if len(summary.notes) < SUMMARY_FAILURE_LIMIT:
            summary.notes.append({"path": display(result.entry.relpath), "note": note})


def _signed64(value: int) -> int:
    """Device and inode numbers are unsigned 64-bit; databases store signed 64-bit."""
    return value - (1 << 64) if value >= (1 << 63) else value


# ----------------------------------------------------------------------------- run


def index(
    store: Store,
    root: str | os.PathLike[str] | bytes,
    options: IndexOptions | None = None,
    progress: ProgressCallback | None = None,
    *,
    pool: Executor[Task, Result] | None = None,
) -> IndexSummary:
    """Index one folder tree into the store and return what happened.

    ``pool``: worker processes started before (``workers.start_early``: the command forks them
    before it loads the database code, so that they start up while it does); the caller closes
    it. Without it, the run starts its own workers once it knows what to decode.

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
        root_id = _ensure_root(store, root_bytes)
        if not options.allow_empty:
            _refuse_empty_root(store, root_id, root_bytes)
        run_id = _begin_run(store, root_id, break_lock=options.break_lock)
    except OperationalError as err:
        raise translate_operational_error(err, store.url) from err
    summary = IndexSummary(root=display(root_bytes))
    recorder: Recorder | None = None
    ended, why = RUN_FAILED, None
    try:
        recorder = Recorder.start(
            store, INDEX, summary.root, index_run_id=run_id, counts=lambda: _counts(summary)
        )
        _index_root(store, root_id, root_bytes, options, params, summary, progress, pool, recorder)
        ended = FINISHED
    except KeyboardInterrupt:
        summary.interrupted = True
        ended = INTERRUPTED
        raise
    except OperationalError as err:  # e.g. locked for longer than the busy timeout
        summary.interrupted = True
        translated = translate_operational_error(err, store.url)
        why = str(translated)
        raise translated from err
    except BaseException as err:
        why = f"{type(err).__name__}: {err}"
        raise
    finally:
        summary.seconds = round(time.monotonic() - started, 3)
        # If even this fails, the next run sees this process gone and marks the run interrupted.
        with contextlib.suppress(OperationalError):
            _end_run(store, run_id, root_id, summary)
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
    pool: Executor[Task, Result] | None,
    recorder: Recorder,
) -> None:
    with store.session() as session:
        work = plan(session, root_id, root, options, params, recorder)
    summary.unchanged, summary.known_bad = work.unchanged, work.known_bad
    summary.missing = len(work.vanished)
    recorder.seen = work.unchanged + work.known_bad + len(work.to_process)
    _apply_plan(store, root_id, work, summary, recorder)
    # Known content is copied from its row instead of decoded again: not with --rehash, whose
    # point is to recompute what the stored rows hold (a new hash version, say).
    recompute = options.rehash or not work.to_process  # (nothing to do: a re-index)
    known = {} if recompute else _known(store, params)
    none: frozenset[bytes] = frozenset()
    tasks = [
        Task(
            root,
            e,
            params.hash_size,
            options.min_resolution,
            known.get(e.size, none),
            features=options.features,
        )
        for e in work.to_process
    ]
    if progress:
        progress(Progress(0, len(tasks), 0, ""))
    recorder.phase, recorder.planned = WORKING, len(tasks)
    recorder.flush()
    writer = Writer(
        store,
        root_id,
        root,
        params,
        work.vanished,
        work.stored_paths,
        work.failure_paths,
        options.min_resolution,
        options.features,
    )
    writer.on_failure = recorder.error
    if options.in_process:
        results: Iterable[Result] = run_tasks(tasks, 1, in_process=True)
        for done, result in enumerate(results, start=1):
            follow_up = writer.write(result, summary)
            if follow_up is not None:
                writer.write(next(run_tasks([follow_up], 1, in_process=True)), summary)
            recorder.bytes_read += result.entry.size
            _report(progress, recorder, done, len(tasks), summary, result)
        return
    if not tasks:
        return
    if pool is not None:
        _run_pool(pool, tasks, writer, summary, progress, recorder)
        return
    warm_up()  # once here, inherited by the workers forked next
    workers = options.workers or default_workers()
    with worker_pool(workers, options.timeout, options.max_memory) as own:
        _run_pool(own, tasks, writer, summary, progress, recorder)


def _run_pool(
    pool: Executor[Task, Result],
    tasks: list[Task],
    writer: Writer,
    summary: IndexSummary,
    progress: ProgressCallback | None,
    recorder: Recorder,
) -> None:
    # Largest first: the run's last files, which one worker finishes while the others have
    # nothing left to do, are then the quickest ones.
    tasks.sort(key=lambda t: t.entry.size, reverse=True)
    for task in tasks:
        pool.submit(task)
    recorder.workers = lambda: _activity(pool)
    done = 0
    for task, outcome in pool.results():
        result = lost_file(task, outcome) if isinstance(outcome, Lost) else outcome
        follow_up = writer.write(result, summary)
        if follow_up is not None:  # decoded by the pool too: it may crash like any other
            pool.submit(follow_up)
            continue
        done += 1
        recorder.bytes_read += task.entry.size
        _report(progress, recorder, done, len(tasks), summary, result)


def _activity(pool: Executor[Task, Result]) -> list[tuple[int | str, str | None, float | None]]:
    """Each worker's pid, the file it is on and for how long (for the progress row)."""
    return [
        (pid, None if task is None else display(task.entry.relpath), seconds)
        for pid, task, seconds in pool.activity()
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
    with store.transaction() as session:
        for ids, status in ((work.vanished, MISSING), (work.reappeared, PRESENT)):
            for chunk in _chunks(ids, 500):
                session.execute(update(Image).where(Image.id.in_(chunk)).values(status=status))
        for paths in _chunks(work.stale_failures, 500):
            session.execute(
                delete(Failure).where(Failure.root_id == root_id, Failure.relpath.in_(paths))
            )
    writer = Writer(store, root_id, b"", HashParams())
    if recorder is not None:
        writer.on_failure = recorder.error
    for problem in work.problems:
        entry = FileEntry(problem.relpath, problem.size, problem.mtime_ns, 0, 0)
        writer.write(NotIndexed(entry, problem.reason, skipped=problem.skipped), summary)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _known(store: Store, params: HashParams) -> dict[int, frozenset[bytes]]:
    """For each size of a stored file, the 8-byte prefixes of their content hashes: what a
    worker needs to recognise a move or an exact copy (the same size, then the same hash)
    without decoding it."""
    with store.session() as session:
        rows = session.execute(
            select(Image.content_hash, Image.size).where(Image.hash_size == params.hash_size)
        )
        by_size: dict[int, set[bytes]] = {}
        for content_hash, size in rows:
            by_size.setdefault(size, set()).add(content_hash[:8])
        return {size: frozenset(prefixes) for size, prefixes in by_size.items()}


def resolve_params(store: Store, options: IndexOptions) -> HashParams:
    """The hash parameters for this run; refuses a mismatch with the database unless rehash."""
    stored = store.get_setting(HASH_PARAMS_KEY)
    wanted = HashParams(options.hash_size or (stored or {}).get("hash_size", 8))
    if stored is not None and stored != asdict(wanted) and not options.rehash:
        raise ParameterMismatchError(
            f"this database was indexed with hash size {stored['hash_size']} (hash version "
            f"{stored['version']}); this run asks for hash size {wanted.hash_size} "
            f"(version {wanted.version})",
            "add --rehash to recompute every image with the new parameters, or use another --db",
        )
    if stored != asdict(wanted):
        with store.transaction() as session:
            store.set_setting(session, HASH_PARAMS_KEY, asdict(wanted))
    return wanted


def _ensure_root(store: Store, root: bytes) -> int:
    """The root's row id, inserted if new: in one statement that lets a concurrent insert of
    the same root win (two runs started together on one folder), then read back."""
    with store.transaction() as session:
        session.execute(
            store.insert(Root)
            .values(path=root, display_path=display(root), created_at=_now())
            .on_conflict_do_nothing(index_elements=["path"])
        )
        return int(session.execute(select(Root.id).where(Root.path == root)).scalar_one())


def _refuse_empty_root(store: Store, root_id: int, root: bytes) -> None:
    """An unmounted drive leaves its mount point an empty folder: indexing it would mark every
    image of the root missing. Harmless (rows are kept) but alarming and almost never meant."""
    try:
        with os.scandir(root) as entries:
            if next(entries, None) is not None:
                return
    except OSError:  # unreadable: the walk records why
        return
    with store.session() as session:
        present = session.execute(
            select(func.count(Image.id)).where(Image.root_id == root_id, Image.status == PRESENT)
        ).scalar_one()
    if present:
        raise EmptyRootError(
            f"{display(root)} is empty, but {present:,} images were indexed there; "
            "nothing was changed",
            "is the drive or share mounted? If the images are really gone, "
            "index with --allow-empty to mark them missing",
        )


def _begin_run(store: Store, root_id: int, *, break_lock: bool = False) -> int:
    """Register this run; refuse when another live dedupdb process is indexing.

    The row is written first and the check made second, so of two runs starting together the
    later one (higher id) always sees the earlier one and steps back. A run of this host whose
    process is gone was killed: it is marked interrupted. A run of another host cannot be
    checked: it holds the lock until it ends or the user breaks it (``break_lock``).
    """
    host, pid = socket.gethostname(), os.getpid()
    with store.transaction() as session:
        run = Run(root_id=root_id, host=host, pid=pid, status="running", started_at=_now())
        session.add(run)
        session.flush()
        run_id = run.id
    with store.transaction() as session:
        others = session.execute(
            select(Run).where(Run.status == "running", Run.id != run_id)
        ).scalars()
        for other in others:
            here = other.host == host
            if (here and not _alive(other.pid)) or (not here and break_lock):
                other.status = "interrupted"
            elif other.id < run_id:
                session.execute(delete(Run).where(Run.id == run_id))
                session.commit()
                raise DatabaseBusyError(
                    f"the database is busy: another dedupdb index (pid {other.pid} on "
                    f"{other.host}, started {other.started_at:%Y-%m-%d %H:%M}) is writing to it",
                    "wait for it to finish, then run the command again"
                    + (
                        ""
                        if here
                        else "; if it is not running any more (its machine or container "
                        "stopped), add --break-lock"
                    ),
                )
        applying = running_apply(session)
        if applying is not None and not (applying.host != host and break_lock):
            # Apply moves and replaces files and updates their rows: an index at the same time
            # would record half-moved files as missing or new.
            session.execute(delete(Run).where(Run.id == run_id))
            session.commit()
            what = "an undo" if applying.status == "undoing" else "an apply"
            raise DatabaseBusyError(
                f"the database is busy: {what} is running (run {applying.id}, pid "
                f"{applying.pid} on {applying.host}, started {applying.started_at:%Y-%m-%d %H:%M})",
                "wait for it to finish, then index again"
                + (
                    ""
                    if applying.host == host
                    else "; if it is not running any more (its machine or container stopped), "
                    "add --break-lock"
                ),
            )
    return run_id


def _alive(pid: int) -> bool:
    """Whether another live process holds the run (a stale row of this process does not)."""
    return pid != os.getpid() and process_alive(pid)


def _end_run(store: Store, run_id: int, root_id: int, summary: IndexSummary) -> None:
    with store.transaction() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                status="interrupted" if summary.interrupted else "done",
                finished_at=_now(),
                summary=json.dumps(summary.to_dict()),
            )
        )
        if not summary.interrupted:
            session.execute(update(Root).where(Root.id == root_id).values(last_indexed_at=_now()))
