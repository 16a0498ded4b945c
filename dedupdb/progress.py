"""Watching runs: what is running now, how past runs went, and the library's totals, read from
what runs record as they go (``tracking``). The data behind ``dedupdb status --watch``,
``dedupdb metrics`` and the web dashboard; nothing here writes.

A run's row says ``running`` until the run ends; a run killed on the spot (kill -9, a power
cut, an out-of-memory kill) never says otherwise. So the state shown is judged on reading
(``effective_state``): a run of this host whose process is gone was interrupted, and so was a
run of another host (whose process cannot be checked) that has not updated its row for
``stale_after`` seconds. A live run whose counts have not moved for ``stuck_after`` seconds is
stuck: still there, getting nowhere (a hung network share, a decoder in an endless loop
without a --timeout).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import DedupdbError
from .store import Store, process_alive
from .store import progress as stored
from .store.progress import ProgressRow
from .store.schema import FAILED as FAILED_FILE
from .store.schema import PRESENT, SKIPPED
from .tracking import FAILED, FINISHED, INTERRUPTED, RUNNING

# A live run whose counts have not moved for this long is stuck (the Docker health check's
# default too). Several times the default per-file --timeout (120 s): every worker may be on
# a file that takes that long.
DEFAULT_STUCK_AFTER_S = 900.0
# A run of another host whose row has not been updated for this long is taken for dead. A
# running index updates its row with each file it finishes, so at least once per --timeout.
DEFAULT_STALE_AFTER_S = 900.0
# How it ended, for people.
ENDINGS = {FINISHED: "finished", FAILED: "failed", INTERRUPTED: "interrupted"}


@dataclass(frozen=True)
class WorkerStatus:
    """One worker process of a running index: the file it is on (None: idle), for how long."""

    pid: int
    path: str | None
    seconds: float | None


@dataclass(frozen=True)
class RunError:
    """A file that failed (index) or an action skipped (apply, undo). ``number`` counts the
    run's errors from 1: a watcher shows those above the last number it showed."""

    number: int
    path: str
    reason: str
    kind: str


@dataclass(frozen=True)
class RunProgress:
    """One run, as last recorded, judged at ``read_at`` (UTC). Times are naive UTC.

    ``state``: running, finished, failed or interrupted (a killed run is interrupted, see the
    module docstring); ``recorded_state`` is what its row says. ``planned`` is the number of
    files to process (apply, undo: actions), ``done`` how many are, ``seen`` how many files the
    walk has seen (index, while ``phase`` is planning). ``rate`` is files per second over the
    last seconds, ``bytes_read`` the bytes of the files read (apply, undo: acted on).
    """

    id: int
    kind: str
    target: str
    host: str
    pid: int
    state: str
    recorded_state: str
    phase: str
    started_at: datetime
    updated_at: datetime
    progressed_at: datetime
    finished_at: datetime | None
    read_at: datetime
    planned: int
    seen: int
    done: int
    new: int
    changed: int
    moved: int
    unchanged: int
    skipped: int
    failed: int
    bytes_read: int
    rate: float
    stuck: bool
    message: str | None
    index_run_id: int | None
    apply_run_id: int | None
    workers: tuple[WorkerStatus, ...] = ()
    errors: tuple[RunError, ...] = ()

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def fraction(self) -> float | None:
        """Done over planned, 0 to 1; None while the plan is not known."""
        if self.phase != "working" or self.planned <= 0:
            return None if self.running else 1.0
        return min(1.0, self.done / self.planned)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate; None when it cannot be told."""
        if not self.running or self.phase != "working" or self.rate <= 0:
            return None
        return max(0, self.planned - self.done) / self.rate

    @property
    def elapsed_seconds(self) -> float:
        """How long it ran (until it ended, or its last update when killed)."""
        end = self.finished_at or (self.read_at if self.running else self.updated_at)
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def idle_seconds(self) -> float:
        """Seconds since its counts last moved."""
        return max(0.0, (self.read_at - self.progressed_at).total_seconds())

    @property
    def ending(self) -> str | None:
        """How it ended, in words; None while it runs."""
        return ENDINGS.get(self.state)

    def errors_after(self, number: int) -> list[RunError]:
        """The errors numbered above ``number`` that the row still holds (it keeps the latest
        few: a watcher that looked long ago sees ``failed`` grow by more)."""
        return [e for e in self.errors if e.number > number]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times as ISO 8601 UTC, the derived figures included."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = _iso(value)
        data.update(
            running=self.running,
            fraction=self.fraction,
            eta_seconds=self.eta_seconds,
            elapsed_seconds=self.elapsed_seconds,
            idle_seconds=self.idle_seconds,
            ending=self.ending,
        )
        return data


@dataclass(frozen=True)
class TotalsPoint:
    """The figures of one report, when it was made, and its match settings."""

    made_at: datetime
    images: int
    clusters: int
    duplicates: int
    reclaimable_bytes: int
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LibraryTotals:
    """What the database holds now, and what the latest report found.

    ``images``: present images; ``failed``/``skipped``: files that could not be or were not
    indexed; ``by_status``: images by status (present, missing, quarantined...).
    ``exact_duplicates`` and ``exact_reclaimable_bytes`` are counted now: the copies beyond
    one of each set of byte-identical present images, and their bytes. ``report`` holds the
    latest report's figures (near duplicates too), None before the first report.
    """

    roots: int
    images: int
    missing: int
    failed: int
    skipped: int
    exact_duplicates: int
    exact_reclaimable_bytes: int
    report: TotalsPoint | None = None
    by_status: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.report is not None:
            data["report"]["made_at"] = _iso(self.report.made_at)
        return data


def _iso(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def effective_state(
    row: ProgressRow, now: datetime, host: str, stale_after: float = DEFAULT_STALE_AFTER_S
) -> str:
    """The state a row stands for: a running row whose process is gone is interrupted.

    On this host, a dedupdb process with the row's pid is the run (``store.process_alive``,
    as the run locks judge it). So is another live process with that pid while the row's
    heartbeat is fresh: a program that runs the index through the library does not have
    dedupdb in its command line; a pid recycled by something else stops the heartbeat.
    """
    if row.state != RUNNING:
        return row.state
    fresh = (now - row.updated_at).total_seconds() <= stale_after
    if row.host == host:
        alive = process_alive(row.pid) or (fresh and _exists(row.pid))
        return RUNNING if alive else INTERRUPTED
    return RUNNING if fresh else INTERRUPTED


def _exists(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie, ended but not yet reaped, does not)."""
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except (OSError, IndexError):
            return False
    try:  # no /proc (macOS): ask the kernel
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _progress(
    row: ProgressRow, now: datetime, host: str, stuck_after: float, stale_after: float
) -> RunProgress:
    state = effective_state(row, now, host, stale_after)
    return RunProgress(
        id=row.id,
        kind=row.kind,
        target=row.target,
        host=row.host,
        pid=row.pid,
        state=state,
        recorded_state=row.state,
        phase=row.phase,
        started_at=row.started_at,
        updated_at=row.updated_at,
        progressed_at=row.progressed_at,
        finished_at=row.finished_at,
        read_at=now,
        planned=row.planned,
        seen=row.seen,
        done=row.done,
        new=row.new,
        changed=row.changed,
        moved=row.moved,
        unchanged=row.unchanged,
        skipped=row.skipped,
        failed=row.failed,
        bytes_read=row.bytes_read,
        rate=row.rate,
        stuck=state == RUNNING and (now - row.progressed_at).total_seconds() > stuck_after,
        message=row.message,
        index_run_id=row.index_run_id,
        apply_run_id=row.apply_run_id,
        workers=tuple(WorkerStatus(**w) for w in _json_list(row.workers) if state == RUNNING),
        errors=tuple(RunError(**e) for e in _json_list(row.errors)),
    )


def _json_list(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _judged(
    rows: list[ProgressRow],
    stuck_after: float = DEFAULT_STUCK_AFTER_S,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> list[RunProgress]:
    now, host = _utcnow(), socket.gethostname()
    return [_progress(r, now, host, stuck_after, stale_after) for r in rows]


def live_runs(
    store: Store,
    *,
    stuck_after: float = DEFAULT_STUCK_AFTER_S,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> list[RunProgress]:
    """The runs going on now (index, apply, resume, undo), oldest first; killed ones left out."""
    runs = _judged(stored.running_progress(store), stuck_after, stale_after)
    return [r for r in runs if r.running]


def get_run(
    store: Store,
    run_id: int,
    *,
    stuck_after: float = DEFAULT_STUCK_AFTER_S,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> RunProgress | None:
    """One run by its progress id (``RunProgress.id``); None when there is none."""
    row = stored.progress_row(store, run_id)
    return None if row is None else _judged([row], stuck_after, stale_after)[0]


def run_history(
    store: Store,
    *,
    limit: int = 50,
    kinds: tuple[str, ...] = (),
    stuck_after: float = DEFAULT_STUCK_AFTER_S,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> list[RunProgress]:
    """The latest ``limit`` runs (of ``kinds``, or of every kind), newest first, running ones
    included, each with its figures and how it ended. Runs made before dedupdb recorded
    progress (schema 0010) are not in it."""
    rows = stored.latest_progress(store, limit=limit, kinds=kinds)
    return _judged(rows, stuck_after, stale_after)


def interrupted_runs(store: Store, *, limit: int = 50) -> list[RunProgress]:
    """Of the latest ``limit`` runs, those that were interrupted (killed or stopped)."""
    return [r for r in run_history(store, limit=limit) if r.state == INTERRUPTED]


def stuck_runs(store: Store, stuck_after: float = DEFAULT_STUCK_AFTER_S) -> list[RunProgress]:
    """Live runs whose counts have not moved for ``stuck_after`` seconds."""
    return [r for r in live_runs(store, stuck_after=stuck_after) if r.stuck]


def latest_run(store: Store, kinds: tuple[str, ...] = ()) -> RunProgress | None:
    """The newest run (of ``kinds``), running or not."""
    found = run_history(store, limit=1, kinds=kinds)
    return found[0] if found else None


def watch(
    store: Store,
    run_id: int,
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> Iterator[RunProgress]:
    """The run's progress every ``interval`` seconds until it ends; the last one yielded has
    ended (finished, failed or interrupted). Raises ``DedupdbError`` for an unknown id."""
    while True:
        current = get_run(store, run_id, stale_after=stale_after)
        if current is None:
            raise DedupdbError(f"there is no run {run_id}", "`dedupdb status --json` lists runs")
        yield current
        if not current.running:
            return
        sleep(interval)


def library_totals(store: Store) -> LibraryTotals:
    """Images and failures now, exact duplicates counted now (cheap: grouped by content hash,
    which is indexed), and the latest report's figures."""
    counts = stored.library_counts(store)
    history = totals_history(store, limit=1)
    return LibraryTotals(
        roots=counts.roots,
        images=counts.by_status.get(PRESENT, 0),
        missing=counts.by_status.get("missing", 0),
        failed=counts.failures.get(FAILED_FILE, 0),
        skipped=counts.failures.get(SKIPPED, 0),
        exact_duplicates=counts.exact_duplicates,
        exact_reclaimable_bytes=counts.exact_reclaimable_bytes,
        report=history[-1] if history else None,
        by_status=counts.by_status,
    )


def totals_history(
    store: Store, *, limit: int = 500, same_settings: bool = True
) -> list[TotalsPoint]:
    """The figures of the latest ``limit`` reports made, oldest first: the library's
    duplicates and reclaimable bytes over time. With ``same_settings``, only the reports
    made with the latest one's match settings: a `report --exact` between two default
    reports is not a drop in duplicates."""
    rows = stored.report_totals(store, limit=limit, same_settings=same_settings)
    points = [
        TotalsPoint(
            r.made_at,
            r.images,
            r.clusters,
            r.duplicates,
            r.reclaimable_bytes,
            _json_dict(r.settings),
        )
        for r in rows
    ]
    return points[::-1]


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = [
    "DEFAULT_STALE_AFTER_S",
    "DEFAULT_STUCK_AFTER_S",
    "LibraryTotals",
    "RunError",
    "RunProgress",
    "TotalsPoint",
    "WorkerStatus",
    "effective_state",
    "get_run",
    "interrupted_runs",
    "latest_run",
    "library_totals",
    "live_runs",
    "run_history",
    "stuck_runs",
    "totals_history",
    "watch",
]


def format_duration(seconds: float) -> str:
    """``42 s``, ``3m05s``, ``2h10m``: how `status --watch` and the dashboard say a duration."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
