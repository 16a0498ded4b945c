"""The apply journal and the apply run lock: what ``actions`` writes before and after touching
each file, and which apply (or index) holds the database.

Every journal step is its own committed transaction (``Journal``): the row says ``planned``
before the filesystem is touched and ``done`` (or ``skipped``) after, so a run killed at any
moment leaves a journal that ``resume`` and ``undo`` can settle by looking at the disk.

An apply run row with status ``running`` or ``undoing`` is the lock (see ``locks``): ``claim``
refuses to start beside a live one, and ``step_back_if_second`` and ``take_over`` settle the
race of two runs (or an apply and an index) started together.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .engine import Store
from .images import signed64
from .locks import process_alive, running_index
from .schema import PRESENT, Action, ApplyRun, Image, Root, Run

# Journal states of one action.
PLANNED, DONE, SKIPPED, UNDONE = "planned", "done", "skipped", "undone"
# Apply run statuses; the first two hold the database.
RUNNING, UNDOING, INTERRUPTED = "running", "undoing", "interrupted"
UNDONE_RUN, PARTLY_UNDONE = "undone", "partly-undone"
_HOLDING = (RUNNING, UNDOING)
_CHUNK = 500


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class IndexedRow:
    """An image as the index holds it, with its root: what a plan checks a report against."""

    image_id: int
    root: bytes
    relpath: bytes
    status: str
    size: int
    mtime_ns: int
    content_hash: bytes
    device: int
    inode: int

    @property
    def path(self) -> bytes:
        return os.path.join(self.root, self.relpath)


@dataclass(frozen=True)
class KeeperState:
    """What the index holds about a keeper now: it must still be present and unchanged."""

    status: str
    size: int
    mtime_ns: int
    content_hash: bytes


@dataclass(frozen=True)
class NewAction:
    """A planned action, as the journal records it before anything is touched."""

    image_id: int
    keeper_id: int
    cluster: int
    path: bytes
    display_path: str
    keeper_path: bytes
    destination: bytes | None
    size: int
    mtime_ns: int
    content_hash: bytes


@dataclass(frozen=True)
class NewRefusal:
    """A file (or cluster: image_id None) the plan refused, recorded as skipped."""

    cluster: int
    image_id: int | None
    path: str
    reason: str


@dataclass(frozen=True)
class JournalEntry:
    """One action of the journal as it stands."""

    id: int
    image_id: int | None
    keeper_id: int | None
    cluster: int
    state: str
    path: bytes
    display_path: str
    keeper_path: bytes
    destination: bytes | None
    size: int
    mtime_ns: int
    content_hash: bytes
    reason: str | None


@dataclass(frozen=True)
class ApplyRunRecord:
    id: int
    action: str
    status: str
    quarantine: bytes | None
    source: str
    host: str
    pid: int
    started_at: datetime
    finished_at: datetime | None
    undone_at: datetime | None


@dataclass(frozen=True)
class AppliedRun:
    """An apply run with how many of its actions are in each state (``history``)."""

    run: ApplyRunRecord
    done: int
    skipped: int
    undone: int
    planned: int
    done_bytes: int


@dataclass(frozen=True)
class FileStat:
    """What a restored or linked file's row takes from the disk."""

    device: int
    inode: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


# Why a run may not start now.


@dataclass(frozen=True)
class ApplyHolds:
    """Another apply, resume or undo runs on this database."""

    run_id: int
    pid: int
    host: str


@dataclass(frozen=True)
class IndexHolds:
    """An index runs on this database."""

    pid: int
    host: str
    started_at: datetime


@dataclass(frozen=True)
class ApplyWaiting:
    """An interrupted apply has actions not settled: resume or undo it first."""

    run_id: int


Blocker = ApplyHolds | IndexHolds | ApplyWaiting


def _record(run: ApplyRun) -> ApplyRunRecord:
    return ApplyRunRecord(
        run.id, run.action, run.status, run.quarantine, run.source, run.host, run.pid,
        run.started_at, run.finished_at, run.undone_at,
    )  # fmt: skip


def _entry(row: Action) -> JournalEntry:
    return JournalEntry(
        row.id, row.image_id, row.keeper_id, row.cluster, row.state, row.path, row.display_path,
        row.keeper_path, row.destination, row.size, row.mtime_ns, row.content_hash, row.reason,
    )  # fmt: skip


def _index_holds(run: Run) -> IndexHolds:
    return IndexHolds(run.pid, run.host, run.started_at)


# ----------------------------------------------------------------------------- reads for a plan


def indexed_rows(store: Store, image_ids: Iterable[int]) -> dict[int, IndexedRow]:
    """The index's rows of these images (any status), by id; unknown ids are left out."""
    rows: dict[int, IndexedRow] = {}
    wanted = sorted(set(image_ids))
    with store.session() as session:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for image, root in session.execute(
                select(Image, Root.path)
                .join(Root, Root.id == Image.root_id)
                .where(Image.id.in_(chunk))
            ):
                rows[image.id] = IndexedRow(
                    image.id, root, image.relpath, image.status, image.size, image.mtime_ns,
                    image.content_hash, image.device, image.inode,
                )  # fmt: skip
    return rows


def keeper_state(store: Store, image_id: int | None) -> KeeperState | None:
    """The index's row of a keeper now; None when it is gone from the index."""
    if image_id is None:
        return None
    with store.session() as session:
        image = session.get(Image, image_id)
        if image is None:
            return None
        return KeeperState(image.status, image.size, image.mtime_ns, image.content_hash)


# ----------------------------------------------------------------------------- the run lock


class _Blocked(Exception):
    def __init__(self, blocker: Blocker) -> None:
        self.blocker = blocker


def claim(store: Store, *, resuming: bool = False) -> Blocker | None:
    """What stops an apply (resume, undo with ``resuming``) from starting now, or None.

    In one transaction: a live apply of another process blocks; the dead ones are marked
    interrupted (kept only when nothing blocks); a running index blocks; and, for a new
    apply, an interrupted one with actions still planned blocks.
    """
    try:
        with store.transaction() as session:
            _claim(session, resuming)
    except _Blocked as blocked:
        return blocked.blocker
    return None


def _claim(session: Session, resuming: bool) -> None:
    host = socket.gethostname()
    holding = select(ApplyRun).where(ApplyRun.status.in_(_HOLDING))
    for run in session.execute(holding).scalars():
        if run.host != host or process_alive(run.pid):
            raise _Blocked(ApplyHolds(run.id, run.pid, run.host))
        run.status = INTERRUPTED
    indexing = running_index(session)
    if indexing is not None:
        raise _Blocked(_index_holds(indexing))
    if resuming:
        return
    waiting = session.execute(
        select(ApplyRun.id)
        .join(Action, Action.run_id == ApplyRun.id)
        .where(ApplyRun.status == INTERRUPTED, Action.state == PLANNED)
        .limit(1)
    ).scalar_one_or_none()
    if waiting is not None:
        raise _Blocked(ApplyWaiting(waiting))


def start_run(
    store: Store,
    *,
    action: str,
    quarantine: bytes | None,
    source: str,
    actions: Sequence[NewAction],
    refused: Sequence[NewRefusal],
) -> int:
    """Write a new run (holding the database) and its journal, every action planned, in one
    transaction; returns the run's id."""
    with store.transaction() as session:
        run = ApplyRun(
            action=action,
            status=RUNNING,
            quarantine=quarantine,
            source=source,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=_now(),
        )
        session.add(run)
        session.flush()
        run_id = run.id
        session.add_all(_refusal_row(run_id, refusal) for refusal in refused)
        session.add_all(_planned_row(run_id, item) for item in actions)
    return run_id


def _refusal_row(run_id: int, refusal: NewRefusal) -> Action:
    return Action(
        run_id=run_id,
        image_id=refusal.image_id,
        cluster=refusal.cluster,
        state=SKIPPED,
        path=os.fsencode(refusal.path),
        display_path=refusal.path,
        keeper_path=b"",
        size=0,
        mtime_ns=0,
        content_hash=b"",
        reason=refusal.reason,
        updated_at=_now(),
    )


def _planned_row(run_id: int, item: NewAction) -> Action:
    return Action(
        run_id=run_id,
        image_id=item.image_id,
        keeper_id=item.keeper_id,
        cluster=item.cluster,
        state=PLANNED,
        path=item.path,
        display_path=item.display_path,
        keeper_path=item.keeper_path,
        destination=item.destination,
        size=item.size,
        mtime_ns=item.mtime_ns,
        content_hash=item.content_hash,
        updated_at=_now(),
    )


def step_back_if_second(store: Store, run_id: int) -> Blocker | None:
    """Of two applies started together, both passed ``claim``; the later one (higher id)
    sees the earlier one here, removes its own run and journal, and returns what blocks it.
    Likewise when an index started meanwhile (each writes its run first and checks for the
    other second, so of two started together at least one steps back)."""
    host = socket.gethostname()
    with store.session() as session:
        earlier = session.execute(
            select(ApplyRun).where(ApplyRun.status.in_(_HOLDING), ApplyRun.id < run_id)
        ).scalars()
        other = next((r for r in earlier if r.host != host or process_alive(r.pid)), None)
        holder = None if other is None else ApplyHolds(other.id, other.pid, other.host)
        found = running_index(session)
        indexing = None if found is None else _index_holds(found)
    if holder is None and indexing is None:
        return None
    with store.transaction() as session:
        session.execute(delete(Action).where(Action.run_id == run_id))
        session.execute(delete(ApplyRun).where(ApplyRun.id == run_id))
    return indexing or holder


def take_over(store: Store, run_id: int, status: str) -> IndexHolds | None:
    """Mark an existing run as this process's (resume: running, undo: undoing); if an index
    started meanwhile, restore the row as it was and return the index that holds."""
    with store.transaction() as session:
        row = session.get(ApplyRun, run_id)
        assert row is not None
        before = (row.status, row.host, row.pid)
        row.status, row.host, row.pid = status, socket.gethostname(), os.getpid()
    with store.session() as session:
        found = running_index(session)
        indexing = None if found is None else _index_holds(found)
    if indexing is None:
        return None
    with store.transaction() as session:
        row = session.get(ApplyRun, run_id)
        assert row is not None
        row.status, row.host, row.pid = before
    return indexing


# ----------------------------------------------------------------------------- runs


def latest_interrupted(store: Store) -> int | None:
    """The newest interrupted run's id (what ``resume`` finishes)."""
    with store.session() as session:
        found: int | None = session.execute(
            select(ApplyRun.id)
            .where(ApplyRun.status == INTERRUPTED)
            .order_by(ApplyRun.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        return found


def latest_not_undone(store: Store) -> int | None:
    """The newest run not undone (what ``undo`` without a run id reverses)."""
    with store.session() as session:
        found: int | None = session.execute(
            select(ApplyRun.id)
            .where(ApplyRun.status.notin_((UNDONE_RUN,)))
            .order_by(ApplyRun.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        return found


def get_run(store: Store, run_id: int) -> ApplyRunRecord | None:
    with store.session() as session:
        run = session.get(ApplyRun, run_id)
        return None if run is None else _record(run)


def entries(
    store: Store, run_id: int, states: Sequence[str] = (), *, newest_first: bool = False
) -> list[JournalEntry]:
    """The run's journal (in the ``states``, or all), in the order it was planned."""
    statement = select(Action).where(Action.run_id == run_id)
    if states:
        statement = statement.where(Action.state.in_(states))
    order = Action.id.desc() if newest_first else Action.id
    with store.session() as session:
        return [_entry(row) for row in session.execute(statement.order_by(order)).scalars()]


def finish_run(store: Store, run_id: int, status: str) -> None:
    """The run ended (done) or stopped (interrupted): it holds the database no more."""
    with store.transaction() as session:
        run = session.get(ApplyRun, run_id)
        assert run is not None
        run.status, run.finished_at = status, _now()


def finish_undo(store: Store, run_id: int, *, partly: bool) -> None:
    with store.transaction() as session:
        run = session.get(ApplyRun, run_id)
        assert run is not None
        run.status, run.undone_at = (PARTLY_UNDONE if partly else UNDONE_RUN), _now()


def applied_runs(store: Store) -> list[AppliedRun]:
    """Every apply run, newest first, with how many actions are in each state."""
    with store.session() as session:
        counts: dict[int, dict[str, tuple[int, int]]] = {}
        for run_id, state, n, size in session.execute(
            select(Action.run_id, Action.state, func.count(), func.sum(Action.size)).group_by(
                Action.run_id, Action.state
            )
        ):
            counts.setdefault(run_id, {})[state] = (n, int(size or 0))
        runs = session.execute(select(ApplyRun).order_by(ApplyRun.id.desc())).scalars()
        result = []
        for run in runs:
            c = counts.get(run.id, {})
            result.append(
                AppliedRun(
                    run=_record(run),
                    done=c.get(DONE, (0, 0))[0],
                    skipped=c.get(SKIPPED, (0, 0))[0],
                    undone=c.get(UNDONE, (0, 0))[0],
                    planned=c.get(PLANNED, (0, 0))[0],
                    done_bytes=c.get(DONE, (0, 0))[1],
                )
            )
    return result


# ----------------------------------------------------------------------------- journal steps


class Journal:
    """The steps of one run's journal, each committed on its own: a checkpoint that a run
    killed right after it finds again."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def settled(
        self,
        entry_id: int,
        state: str,
        *,
        reason: str | None = None,
        destination: bytes | None = None,
        image_status: str | None = None,
        link: FileStat | None = None,
    ) -> None:
        """The 'after' step: the action is done or skipped; with ``image_status``, the image
        row's new status (and, with ``link``, its new device and inode: a hard link is the
        file ``index`` must recognise as ours) in the same transaction."""
        with self.store.transaction() as session:
            entry = session.get(Action, entry_id)
            assert entry is not None
            entry.state, entry.reason, entry.updated_at = state, reason, _now()
            if destination is not None:
                entry.destination = destination
            if image_status is None or entry.image_id is None:
                return
            image = session.get(Image, entry.image_id)
            if image is not None:
                image.status = image_status
                if link is not None:
                    image.device, image.inode = signed64(link.device), signed64(link.inode)

    def destination(self, entry_id: int, destination: bytes) -> None:
        """Where the file goes, written before it is moved there."""
        with self.store.transaction() as session:
            entry = session.get(Action, entry_id)
            assert entry is not None
            entry.destination, entry.updated_at = destination, _now()

    def note(self, entry_id: int, reason: str) -> None:
        """Why an undo left this action as it was."""
        with self.store.transaction() as session:
            entry = session.get(Action, entry_id)
            assert entry is not None
            entry.reason, entry.updated_at = reason, _now()

    def restored(self, entry_id: int, image_id: int | None, found: FileStat | None) -> None:
        """An action undone; the image row, when the file is back (``found``), is present
        again, with the file's identity as it is now."""
        with self.store.transaction() as session:
            row = session.get(Action, entry_id)
            assert row is not None
            row.state, row.updated_at = UNDONE, _now()
            image = session.get(Image, image_id) if image_id is not None else None
            if image is not None and found is not None and image.status != PRESENT:
                image.status = PRESENT
                image.device, image.inode = signed64(found.device), signed64(found.inode)
                image.mtime_ns, image.size = found.mtime_ns, found.size


__all__ = [
    "DONE",
    "INTERRUPTED",
    "PARTLY_UNDONE",
    "PLANNED",
    "RUNNING",
    "SKIPPED",
    "UNDOING",
    "UNDONE",
    "UNDONE_RUN",
    "AppliedRun",
    "ApplyHolds",
    "ApplyRunRecord",
    "ApplyWaiting",
    "Blocker",
    "FileStat",
    "IndexHolds",
    "IndexedRow",
    "Journal",
    "JournalEntry",
    "KeeperState",
    "NewAction",
    "NewRefusal",
    "applied_runs",
    "claim",
    "entries",
    "finish_run",
    "finish_undo",
    "get_run",
    "indexed_rows",
    "keeper_state",
    "latest_interrupted",
    "latest_not_undone",
    "start_run",
    "step_back_if_second",
    "take_over",
]
