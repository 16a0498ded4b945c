"""Act on a report's keepers without ever losing a photo: apply, resume, undo, history.

``plan.plan_actions`` decides which files to act on (and refuses what is unsafe); ``apply``
acts on that plan with a journal: each file's action is written
to the database as ``planned`` before the filesystem is touched and ``done`` after, so a run
killed at any moment can be finished (``resume``) or reversed (``undo``), which look at the
disk to settle an action caught mid-way. Just before touching a file it is checked against the
index again (size, mtime, content hash; its keeper too): anything changed is skipped with the
reason. Filesystem errors (permission denied, read-only, disk full) skip that file and the run
goes on.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from . import fileops
from .plan import (
    ACTIONS,
    DELETE,
    HARDLINK,
    IMAGE_STATUS,
    MOVE,
    SYMLINK,
    TRASH,
    ActionError,
    ActionPlan,
    PlannedAction,
    Refusal,
    default_quarantine,
    load_report,
    plan_actions,
    report_source,
)
from .store import Store
from .store import applies as journal
from .store.applies import (
    DONE,
    INTERRUPTED,
    PLANNED,
    RUNNING,
    SKIPPED,
    UNDOING,
    UNDONE,
    UNDONE_RUN,
    ApplyHolds,
    ApplyWaiting,
    Blocker,
    FileStat,
    IndexHolds,
    JournalEntry,
    NewAction,
    NewRefusal,
)
from .store.schema import PRESENT
from .tracking import APPLY, FAILED, FINISHED, RESUME, UNDO, Recorder
from .tracking import INTERRUPTED as RUN_INTERRUPTED
from .walk import display

# ----------------------------------------------------------------------------- apply


@dataclass
class ApplyResult:
    run_id: int
    action: str
    done: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Refusal] = field(default_factory=list)
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


ProgressCallback = Callable[[int, int, str], None]


def apply(store: Store, plan: ActionPlan, progress: ProgressCallback | None = None) -> ApplyResult:
    """Carry out a plan with the journal; returns what was done and what was skipped, why.

    Raises ``ActionError`` when another apply is running or an interrupted one waits to be
    resumed or undone (acting again before that could act twice on one cluster).
    """
    _claim(store)
    if plan.quarantine is not None and plan.actions:
        try:
            fileops.ensure_quarantine(plan.quarantine)
        except OSError as err:
            raise ActionError(
                f"cannot create the quarantine folder {display(plan.quarantine)}: "
                f"{err.strerror or err}",
                "choose another with --move-to DIR",
            ) from err
    run_id = journal.start_run(
        store,
        action=plan.action,
        quarantine=plan.quarantine,
        source=plan.source,
        actions=[_new_action(item) for item in plan.actions],
        refused=[NewRefusal(r.cluster, r.image_id, r.path, r.reason) for r in plan.refused],
    )
    blocker = journal.step_back_if_second(store, run_id)
    if blocker is not None:
        raise _blocked(blocker)
    return _run(store, run_id, progress, resuming=False)


def _new_action(item: PlannedAction) -> NewAction:
    return NewAction(
        image_id=item.file.image_id,
        keeper_id=item.keeper.image_id,
        cluster=item.cluster,
        path=item.file.path,
        display_path=display(item.file.path),
        keeper_path=item.keeper.path,
        destination=item.destination,
        size=item.file.size,
        mtime_ns=item.file.mtime_ns,
        content_hash=item.file.content_hash,
    )


def _blocked(blocker: Blocker) -> ActionError:
    """Why a run may not start now, in words."""
    if isinstance(blocker, IndexHolds):
        return _index_running(blocker)
    if isinstance(blocker, ApplyWaiting):
        return ActionError(
            f"apply run {blocker.run_id} was interrupted before it finished",
            f"finish it with `dedupdb apply --resume`, or reverse it with "
            f"`dedupdb undo {blocker.run_id}`, then apply again",
        )
    assert isinstance(blocker, ApplyHolds)
    return ActionError(
        f"another dedupdb apply (run {blocker.run_id}, pid {blocker.pid} on {blocker.host}) is "
        "running on this database",
        "wait for it to finish",
    )


def _index_running(run: IndexHolds) -> ActionError:
    """Apply and undo move files and update their rows: not while an index records them."""
    here = run.host == socket.gethostname()
    return ActionError(
        f"an index is running on this database (pid {run.pid} on {run.host}, started "
        f"{run.started_at:%Y-%m-%d %H:%M}); acting on files while they are indexed could "
        "record a moved photo as missing",
        "wait for it to finish, then run this again"
        + (
            ""
            if here
            else "; if it is not running any more (its machine or container stopped), "
            "`dedupdb index ROOT --break-lock` clears it"
        ),
    )


def _take_over(store: Store, run_id: int, status: str) -> None:
    """Mark an existing run as this process's (resume: running, undo: undoing), then step
    back, restoring the row, if an index started meanwhile."""
    indexing = journal.take_over(store, run_id, status)
    if indexing is not None:
        raise _index_running(indexing)


def resume(store: Store, progress: ProgressCallback | None = None) -> ApplyResult:
    """Finish the latest interrupted apply run: actions caught mid-way are settled by looking
    at the disk, actions not started are checked and done as planned."""
    _claim(store, resuming=True)
    run_id = journal.latest_interrupted(store)
    if run_id is None:
        raise ActionError("no interrupted apply run to resume", "see `dedupdb history`")
    _take_over(store, run_id, RUNNING)
    return _run(store, run_id, progress, resuming=True)


def _claim(store: Store, resuming: bool = False) -> None:
    """Refuse to start while another apply runs; mark dead runs interrupted; refuse a new run
    while an interrupted one has unsettled actions."""
    blocker = journal.claim(store, resuming=resuming)
    if blocker is not None:
        raise _blocked(blocker)


class _Skip(Exception):
    """This action is not taken; the reason is recorded and the run goes on."""


def _run(
    store: Store, run_id: int, progress: ProgressCallback | None, resuming: bool
) -> ApplyResult:
    run = journal.get_run(store, run_id)
    assert run is not None
    action = run.action
    result = ApplyResult(run_id=run_id, action=action)
    keepers = _KeeperCheck(store)
    todo = journal.entries(store, run_id, (PLANNED,))
    recorder = Recorder.start(
        store, RESUME if resuming else APPLY, run.source, apply_run_id=run_id, planned=len(todo)
    )
    try:
        for done, entry in enumerate(todo, start=1):
            try:
                destination = _settle_or_perform(store, action, entry, keepers, resuming)
            except _Skip as skip:
                _record(store, entry.id, SKIPPED, reason=str(skip))
                recorder.error(entry.display_path, str(skip), SKIPPED)
            else:
                _record(
                    store, entry.id, DONE, destination=destination, action=action, path=entry.path
                )
                recorder.bytes_read += entry.size
            _tick(recorder, done)
            if progress:
                progress(done, len(todo), entry.display_path)
    except BaseException as err:  # Ctrl+C, or the database went away: resumable, or undoable
        journal.finish_run(store, run_id, INTERRUPTED)
        _ended(recorder, err)
        raise
    for row in journal.entries(store, run_id):
        if row.state == DONE:
            result.done.append(
                {
                    "path": row.display_path,
                    "destination": display(row.destination) if row.destination else None,
                }
            )
            result.bytes += row.size
        elif row.state == SKIPPED:
            result.skipped.append(
                Refusal(row.cluster, row.image_id, row.display_path, row.reason or "")
            )
    journal.finish_run(store, run_id, DONE)
    recorder.finish(FINISHED)
    return result


def _tick(recorder: Recorder, done: int) -> None:
    """One more action settled (done or skipped): the progress row's counts."""
    recorder.done = done
    recorder.tick()


def _ended(recorder: Recorder, err: BaseException) -> None:
    """Record how a run that raised ended: interrupted by Ctrl+C or SIGTERM, else failed."""
    if isinstance(err, KeyboardInterrupt):
        recorder.finish(RUN_INTERRUPTED)
    else:
        recorder.finish(FAILED, f"{type(err).__name__}: {err}")


def _record(
    store: Store,
    entry_id: int,
    state: str,
    *,
    reason: str | None = None,
    destination: bytes | None = None,
    action: str | None = None,
    path: bytes | None = None,
) -> None:
    """The journal's 'after' step, with the image row's new status in the same transaction
    (``path``: the file acted on, whose hard link ``index`` must recognise as ours)."""
    image_status = IMAGE_STATUS[action] if state == DONE and action is not None else None
    link = None
    if image_status is not None and action == HARDLINK and path is not None:
        st = fileops.lstat_or_none(path)
        link = None if st is None else FileStat.of(st)
    journal.Journal(store).settled(
        entry_id,
        state,
        reason=reason,
        destination=destination,
        image_status=image_status,
        link=link,
    )


class _KeeperCheck:
    """Is the keeper still there with its indexed content? Hashed once per run and file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.verified: dict[tuple[bytes, int, int, int, int], bytes] = {}

    def check(self, entry: JournalEntry) -> os.stat_result:
        keeper = journal.keeper_state(self.store, entry.keeper_id)
        path = entry.keeper_path
        if keeper is None or keeper.status != PRESENT:
            state = "gone from the index" if keeper is None else keeper.status
            raise _Skip(f"its keeper {display(path)} is {state}")
        try:
            st = os.lstat(path)  # a keeper replaced by a symlink is not the indexed file
        except OSError as err:
            raise _Skip(f"its keeper {display(path)} cannot be reached: {_why(err)}") from err
        if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != (
            keeper.size,
            keeper.mtime_ns,
        ):
            raise _Skip(f"its keeper {display(path)} changed since it was indexed")
        key = (path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
        if key not in self.verified:
            try:
                self.verified[key] = fileops.hash_file(path)
            except OSError as err:
                raise _Skip(f"its keeper {display(path)} cannot be read: {_why(err)}") from err
        if self.verified[key] != keeper.content_hash:
            raise _Skip(f"its keeper {display(path)} changed since it was indexed")
        return st


def _why(err: OSError) -> str:
    if isinstance(err, fileops.ContentChanged):
        return str(err.strerror)
    names = {
        13: "permission denied",  # EACCES
        1: "operation not permitted",  # EPERM
        30: "read-only filesystem",  # EROFS
        28: "disk full",  # ENOSPC
        122: "disk quota exceeded",  # EDQUOT
        2: "no such file",  # ENOENT
    }
    return names.get(err.errno or 0, err.strerror or str(err))


def _check_file(entry: JournalEntry, keeper_stat: os.stat_result, action: str) -> None:
    """The file is still what the index says, and is not its keeper under another name."""
    st = fileops.lstat_or_none(entry.path)
    if st is None:
        raise _Skip("it is gone since it was indexed")
    if not stat.S_ISREG(st.st_mode):
        raise _Skip("it is no longer a regular file")
    if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
        raise _Skip("it changed since it was indexed (size or modification time)")
    if fileops.same_file(st, keeper_stat) or os.path.realpath(entry.path) == os.path.realpath(
        entry.keeper_path
    ):
        raise _Skip("it is its keeper through another path (the same file)")
    if action == HARDLINK and st.st_dev != keeper_stat.st_dev:
        raise _Skip(
            "its keeper is on another filesystem: hard links need one filesystem "
            "(use --symlink or --move-to)"
        )
    try:
        digest = fileops.hash_file(entry.path)
    except OSError as err:
        raise _Skip(f"cannot read it: {_why(err)}") from err
    if digest != entry.content_hash:
        raise _Skip("its content changed since it was indexed")


def _settle_or_perform(
    store: Store, action: str, entry: JournalEntry, keepers: _KeeperCheck, resuming: bool
) -> bytes | None:
    """Finish an action caught mid-way by a crash (when resuming), or check and perform one
    not started. Returns where the file went (None for delete)."""
    if resuming:
        try:
            started, destination = _settle_forward(action, entry)
        except OSError as err:
            raise _Skip(f"could not finish an interrupted step: {_why(err)}") from err
        if started:
            return destination
    keeper_stat = keepers.check(entry)
    _check_file(entry, keeper_stat, action)
    try:
        return _perform(store, action, entry, keeper_stat)
    except fileops.ContentChanged as err:
        raise _Skip(str(err.strerror)) from err
    except OSError as err:
        raise _Skip(f"{_why(err)}; left as it was") from err


def _perform(
    store: Store, action: str, entry: JournalEntry, keeper_stat: os.stat_result
) -> bytes | None:
    if action == DELETE:
        os.unlink(entry.path)
        fileops.fsync_dir(os.path.dirname(entry.path))
        return None
    if action == TRASH:
        return fileops.trash(entry.path)
    assert entry.destination is not None
    destination = _move_aside(store, entry)
    if action == MOVE:
        return destination
    try:
        if action == HARDLINK:
            os.link(entry.keeper_path, entry.path)
        else:
            os.symlink(fileops.symlink_target(entry.path, entry.keeper_path), entry.path)
    except OSError:
        fileops.move(destination, entry.path, entry.content_hash)  # put it back
        raise
    return destination


def _move_aside(store: Store, entry: JournalEntry) -> bytes:
    """Move the file to its quarantine path, never overwriting: a taken name gets a suffix,
    written to the journal before the move."""
    assert entry.destination is not None
    planned = entry.destination
    for _ in range(100):
        destination = fileops.free_name(planned)
        if destination != planned:
            journal.Journal(store).destination(entry.id, destination)
            planned = destination
        try:
            fileops.move(entry.path, destination, entry.content_hash)
        except FileExistsError:
            continue
        return destination
    raise _Skip("no free name in the quarantine folder")  # pragma: no cover


def _settle_forward(action: str, entry: JournalEntry) -> tuple[bool, bytes | None]:
    """For a planned action, look at the disk: if the filesystem step began (a crash caught
    it), finish it: (True, where the file went). If it did not begin: (False, None)."""
    path, dest = entry.path, entry.destination
    if action == DELETE:
        return fileops.lstat_or_none(path) is None, None
    if action == TRASH:
        if fileops.lstat_or_none(path) is not None:
            fileops.drop_orphan_trash_info(path)  # trashing began: the info, not the move
            return False, None
        return True, fileops.find_in_trash(path)
    assert dest is not None
    if action in (HARDLINK, SYMLINK) and _is_our_link(entry):
        return True, dest
    where = _settle(path, dest, entry.content_hash, prefer="destination")
    if where == "source":
        return False, None
    if where != "destination":
        raise _Skip(where)
    if action == MOVE:
        return True, dest
    # Moved aside but not yet linked.
    keeper_stat = fileops.lstat_or_none(entry.keeper_path)
    if keeper_stat is None:
        fileops.move(dest, path, entry.content_hash)
        raise _Skip("its keeper is gone: the file was put back")
    if action == HARDLINK:
        os.link(entry.keeper_path, path)
    else:
        os.symlink(fileops.symlink_target(path, entry.keeper_path), path)
    return True, dest


def _is_our_link(entry: JournalEntry) -> bool:
    keeper_stat = fileops.lstat_or_none(entry.keeper_path)
    return fileops.is_link_to(entry.path, entry.keeper_path, keeper_stat)


def _settle(src: bytes, dst: bytes, content_hash: bytes, prefer: str) -> str:
    """Bring a move caught mid-way to one place: "source" or "destination" (``prefer`` wins
    when the file is in both), or a reason why neither can be trusted."""
    fileops.drop_partial_copies(src, dst)  # a copy stopped part-way, in either direction
    src_st, dst_st = fileops.lstat_or_none(src), fileops.lstat_or_none(dst)
    if src_st is not None and dst_st is not None:
        if fileops.same_file(src_st, dst_st):  # linked, not yet unlinked: one file, two names
            os.unlink(dst if prefer == "source" else src)
            return prefer
        if _hash_or_none(dst) == content_hash and _hash_or_none(src) == content_hash:
            os.unlink(dst if prefer == "source" else src)  # a verified copy, source not removed
            return prefer
        return "source"  # something else took the destination name; the file is at its source
    if src_st is not None:
        return "source"
    if dst_st is not None:
        return "destination"
    return f"neither {display(src)} nor {display(dst)} exists: it was moved by something else"


def _hash_or_none(path: bytes) -> bytes | None:
    try:
        return fileops.hash_file(path)
    except OSError:
        return None


# ----------------------------------------------------------------------------- undo


@dataclass
class UndoResult:
    run_id: int
    action: str
    restored: list[str] = field(default_factory=list)
    skipped: list[Refusal] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


def undo(
    store: Store, run_id: int | None = None, progress: ProgressCallback | None = None
) -> UndoResult:
    """Reverse an apply run (the latest one not undone when ``run_id`` is None): moved files
    go back, links are replaced by the original files again, trashed files come back from a
    freedesktop trash. Deleted files cannot come back: they are listed as skipped."""
    _claim(store, resuming=True)
    if run_id is None:
        run_id = journal.latest_not_undone(store)
        if run_id is None:
            raise ActionError("there is no apply run to undo", "see `dedupdb history`")
    run = journal.get_run(store, run_id)
    if run is None:
        raise ActionError(f"there is no apply run {run_id}", "see `dedupdb history`")
    if run.status == UNDONE_RUN:
        raise ActionError(f"apply run {run_id} is already undone")
    entries = journal.entries(store, run_id, (PLANNED, DONE), newest_first=True)
    _take_over(store, run_id, UNDOING)
    result = UndoResult(run_id=run_id, action=run.action)
    recorder = Recorder.start(store, UNDO, run.source, apply_run_id=run_id, planned=len(entries))
    try:
        _undo_entries(store, run.action, entries, run.quarantine, result, recorder, progress)
    except BaseException as err:
        _ended(recorder, err)
        raise
    journal.finish_undo(store, run_id, partly=bool(result.skipped))
    recorder.finish(FINISHED)
    return result


def _undo_entries(
    store: Store,
    action: str,
    entries: list[JournalEntry],
    quarantine: bytes | None,
    result: UndoResult,
    recorder: Recorder,
    progress: ProgressCallback | None,
) -> None:
    for count, entry in enumerate(entries, start=1):
        try:
            _undo_entry(action, entry, quarantine)
        except _Skip as skip:
            result.skipped.append(
                Refusal(entry.cluster, entry.image_id, entry.display_path, str(skip))
            )
            _note(store, entry.id, str(skip))
            recorder.error(entry.display_path, str(skip), SKIPPED)
        except OSError as err:
            reason = f"{_why(err)}; it stays where it is"
            result.skipped.append(
                Refusal(entry.cluster, entry.image_id, entry.display_path, reason)
            )
            _note(store, entry.id, reason)
            recorder.error(entry.display_path, reason, SKIPPED)
        else:
            _restored(store, entry)
            result.restored.append(entry.display_path)
            recorder.bytes_read += entry.size
        _tick(recorder, count)
        if progress:
            progress(count, len(entries), entry.display_path)


def _undo_entry(action: str, entry: JournalEntry, quarantine: bytes | None) -> None:
    path, dest = entry.path, entry.destination
    if action == DELETE:
        if entry.state == PLANNED and fileops.lstat_or_none(path) is not None:
            return  # never deleted
        raise _Skip("it was deleted: delete cannot be undone")
    if action == TRASH:
        if fileops.lstat_or_none(path) is not None and entry.state == PLANNED:
            fileops.drop_orphan_trash_info(path)  # never trashed, or only its info written
            return
        _undo_trash(entry, dest or fileops.find_in_trash(path))
        return
    assert dest is not None
    if action in (HARDLINK, SYMLINK) and _is_our_link(entry):
        if fileops.lstat_or_none(dest) is None:
            raise _Skip(
                f"its original copy {display(dest)} is gone (the quarantine was emptied?)"
                ": the link stays"
            )
        os.unlink(path)
    if fileops.lstat_or_none(path) is None and fileops.lstat_or_none(dest) is None:
        raise _Skip(f"{display(dest)} is gone (the quarantine was emptied?): nothing to restore")
    where = _settle(path, dest, entry.content_hash, prefer="source")
    if where == "source":
        if _hash_or_none(path) != entry.content_hash and entry.state == DONE:
            raise _Skip(
                f"something else is at {display(path)} now; the file stays at {display(dest)}"
            )
        return
    if where != "destination":
        raise _Skip(where)
    if _hash_or_none(dest) != entry.content_hash:
        raise _Skip(f"{display(dest)} changed in the quarantine; left there")
    fileops.move(dest, path, entry.content_hash)
    _remove_empty_folders(os.path.dirname(dest), quarantine)


def _undo_trash(entry: JournalEntry, trashed: bytes | None) -> None:
    """Take a file out of the trash, or finish doing so: an undo stopped mid-way can leave it
    under both names (linked back, not yet unlinked from the trash), a partial copy (a trash
    on another filesystem), or back in place with its ``.trashinfo`` left behind."""
    path = entry.path
    if trashed is not None and (fileops.lstat_or_none(trashed) or fileops.lstat_or_none(path)):
        where = _settle(path, trashed, entry.content_hash, prefer="source")
    else:
        where = "source" if fileops.lstat_or_none(path) is not None else "gone"
    if where == "source":
        if _hash_or_none(path) != entry.content_hash:
            raise _Skip(f"something else is at {display(path)} now; it stays in the trash")
        if trashed is not None:
            fileops.drop_trash_info(trashed)
        return
    if where != "destination" or trashed is None:
        raise _Skip(
            "it is not in the trash any more (or this system's trash is not "
            "readable by dedupdb): restore it from the trash yourself"
        )
    fileops.untrash(trashed, path, entry.content_hash)


def _remove_empty_folders(folder: bytes, top: bytes | None) -> None:
    """Tidy the quarantine after an undo: remove the folders it emptied, up to its top."""
    while top is not None and folder.startswith(top.rstrip(b"/") + b"/"):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def _note(store: Store, entry_id: int, reason: str) -> None:
    journal.Journal(store).note(entry_id, f"undo: {reason}")


def _restored(store: Store, entry: JournalEntry) -> None:
    st = fileops.lstat_or_none(entry.path)
    found = None if st is None else FileStat.of(st)
    journal.Journal(store).restored(entry.id, entry.image_id, found)


# ----------------------------------------------------------------------------- history


@dataclass
class RunInfo:
    id: int
    action: str
    status: str
    started_at: str
    finished_at: str | None
    undone_at: str | None
    source: str
    quarantine: str | None
    done: int
    skipped: int
    undone: int
    planned: int
    bytes: int


def history(store: Store) -> list[RunInfo]:
    """Every apply run, newest first, with how many actions are in each state."""
    return [
        RunInfo(
            id=a.run.id,
            action=a.run.action,
            status=a.run.status,
            started_at=_iso(a.run.started_at),
            finished_at=_iso(a.run.finished_at) if a.run.finished_at else None,
            undone_at=_iso(a.run.undone_at) if a.run.undone_at else None,
            source=a.run.source,
            quarantine=display(a.run.quarantine) if a.run.quarantine else None,
            done=a.done,
            skipped=a.skipped,
            undone=a.undone,
            planned=a.planned,
            bytes=a.done_bytes,
        )
        for a in journal.applied_runs(store)
    ]


def _iso(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


# The plan's names and the journal's states are re-exported: ``actions`` is the one import for
# acting on a report.
__all__ = [
    "ACTIONS",
    "DELETE",
    "DONE",
    "HARDLINK",
    "MOVE",
    "PLANNED",
    "SKIPPED",
    "SYMLINK",
    "TRASH",
    "UNDONE",
    "ActionError",
    "ActionPlan",
    "ApplyResult",
    "PlannedAction",
    "Refusal",
    "RunInfo",
    "UndoResult",
    "apply",
    "default_quarantine",
    "history",
    "load_report",
    "plan_actions",
    "report_source",
    "resume",
    "undo",
]
