"""Which files to act on: a report's clusters and keepers -> an ``ActionPlan``, and the refusals.

The report is the JSON that ``dedupdb report --json`` writes (possibly edited by the user:
changed keepers, removed clusters) or a ``Report`` built in this process. Whatever is unsafe
is refused with a reason, before anything is touched: a cluster whose keeper is not one of its
members or lists an image twice, a member that is its keeper through another path (hard link,
same real path), a file that is some cluster's keeper, a file the index does not hold as
present or describes differently from the report (an out-of-date report). Nothing here
touches the disk; ``actions.apply`` carries the plan out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from . import review
from .errors import DedupdbError
from .store import Store, library
from .store.applies import IndexedRow, indexed_rows
from .store.schema import DELETED, LINKED, PRESENT, QUARANTINED, TRASHED
from .walk import display

MOVE, TRASH, HARDLINK, SYMLINK, DELETE = "move", "trash", "hardlink", "symlink", "delete"
ACTIONS = (MOVE, TRASH, HARDLINK, SYMLINK, DELETE)
IMAGE_STATUS = {
    MOVE: QUARANTINED,
    TRASH: TRASHED,
    DELETE: DELETED,
    HARDLINK: LINKED,
    SYMLINK: LINKED,
}
REPORT_SCHEMA, REPORT_VERSION = "dedupdb-report", 1
QUARANTINE_FOLDER = "quarantine"  # next to a SQLite database, when --move-to is not given


class ActionError(DedupdbError):
    """A report, plan or run that cannot be acted on as asked."""


@dataclass(frozen=True)
class IndexedFile:
    """A file as the index knows it: what must still hold before it is touched."""

    image_id: int
    path: bytes
    size: int
    mtime_ns: int
    content_hash: bytes
    device: int
    inode: int


@dataclass(frozen=True)
class PlannedAction:
    cluster: int
    file: IndexedFile  # the duplicate to act on
    keeper: IndexedFile
    destination: bytes | None  # quarantine (move) or backup (links) path, before collisions
    # The camera's metadata this copy has and its keeper lacks ("camera Canon EOS 5D, date
    # taken 2021-06-01"), as the report says: lost from the library when the copy goes.
    metadata_lost: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "image_id": self.file.image_id,
            "path": display(self.file.path),
            "size": self.file.size,
            "keeper_id": self.keeper.image_id,
            "keeper_path": display(self.keeper.path),
            "destination": display(self.destination) if self.destination else None,
            "metadata_lost": self.metadata_lost,
        }


@dataclass(frozen=True)
class Refusal:
    """A file (or a whole cluster, image_id None) the plan or the run does not touch, and why."""

    cluster: int
    image_id: int | None
    path: str
    reason: str


@dataclass
class ActionPlan:
    action: str
    source: str
    quarantine: bytes | None
    actions: list[PlannedAction] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    # The report acted on: when it was made and with which settings (as it records them).
    generated_at: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    chosen: int = 0  # clusters whose keepers came from a review decision (dedupdb serve)
    left_alone: int = 0  # clusters left out by a review decision (skipped, or not reviewed)

    @property
    def metadata_lost(self) -> list[PlannedAction]:
        """The actions on copies that hold camera metadata their keeper lacks."""
        return [a for a in self.actions if a.metadata_lost]

    @property
    def bytes(self) -> int:
        """Bytes the acted-on files take (hard links of one file counted once)."""
        sizes = {(a.file.device, a.file.inode): a.file.size for a in self.actions}
        return sum(sizes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "source": self.source,
            "report": {"generated_at": self.generated_at, "settings": self.settings},
            "quarantine": display(self.quarantine) if self.quarantine else None,
            "files": len(self.actions),
            "bytes": self.bytes,
            "actions": [a.to_dict() for a in self.actions],
            "metadata_lost": len(self.metadata_lost),
            "refused": [asdict(r) for r in self.refused],
            "review": {"chosen": self.chosen, "left_alone": self.left_alone},
        }


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a report JSON file (``dedupdb report --json``), checking its schema and version."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as err:
        raise ActionError(f"cannot read the report {os.fspath(path)}: {err.strerror}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ActionError(
            f"{os.fspath(path)} is not valid JSON ({err})",
            "write a report with `dedupdb report --json FILE`; check any edits you made",
        ) from err
    check_report(data, os.fspath(path))
    return data  # type: ignore[no-any-return]


def check_report(data: Any, name: str = "the report") -> None:
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        raise ActionError(
            f'{name} is not a dedupdb report (no "schema": "{REPORT_SCHEMA}")',
            "write one with `dedupdb report --json FILE`",
        )
    version = data.get("version")
    if not isinstance(version, int) or version > REPORT_VERSION:
        raise ActionError(
            f"{name} has report version {version!r}; this dedupdb reads version {REPORT_VERSION}",
            "upgrade dedupdb, or write the report again with this version",
        )
    if not isinstance(data.get("clusters"), list):
        raise ActionError(f'{name} has no "clusters" list')


def default_quarantine(store: Store) -> bytes:
    """``quarantine/`` next to a SQLite database; a server database needs ``--move-to``."""
    path = store.sqlite_path
    if path is None:
        raise ActionError(
            "there is no default quarantine folder for a server database",
            "give one with --move-to DIR",
        )
    return os.fsencode(path.absolute().parent / QUARANTINE_FOLDER)


def plan_actions(
    store: Store,
    report: dict[str, Any] | Any,
    action: str = MOVE,
    *,
    quarantine: str | os.PathLike[str] | bytes | None = None,
    source: str = "report",
    reviewed_only: bool = False,
) -> ActionPlan:
    """What ``apply`` would do with the report's clusters and keepers, and what it refuses.

    ``report`` is the parsed JSON of ``dedupdb report --json`` (see ``load_report``) or a
    ``Report`` object (anything with ``to_dict()`` giving that JSON).

    Refused per cluster: a keeper that is not one of the cluster's members or that the index
    does not hold as present; a member that is the keeper itself through another path (hard
    link, same real path). Refused per file: files the index does not hold as present, whose
    path or content differ from the report's, that are some cluster's keeper, or that another
    cluster already lists.

    The decisions made while reviewing (``review``: chosen keepers, copies kept, clusters
    skipped) are applied first; with ``reviewed_only`` only the clusters decided so are acted on.
    """
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if not isinstance(report, dict) and hasattr(report, "to_dict"):
        report = report.to_dict()  # a report.Report built in this process
    check_report(report)
    decided = review.overlay(report, review.load_choices(store), reviewed_only=reviewed_only)
    report = decided.report
    folder: bytes | None = None
    if action in (MOVE, HARDLINK, SYMLINK):
        folder = os.path.abspath(
            os.fsencode(quarantine) if quarantine is not None else default_quarantine(store)
        )
    made = report.get("generated_at")
    settings = report.get("settings")
    plan = ActionPlan(
        action=action,
        source=source,
        quarantine=folder,
        generated_at=made if isinstance(made, str) else None,
        settings=dict(settings) if isinstance(settings, dict) else {},
        chosen=decided.chosen,
        left_alone=decided.left_alone,
    )
    clusters = [c for c in report["clusters"] if isinstance(c, dict)]
    ids = {
        m.get("image_id")
        for c in clusters
        for m in c.get("members", [])
        if isinstance(m, dict) and isinstance(m.get("image_id"), int)
    }
    rows = _load_rows(store, ids)
    labels = _root_labels(store)
    keepers = {c.get("keeper") for c in clusters}
    taken: set[int] = set()
    for cluster in clusters:
        _plan_cluster(plan, cluster, rows, labels, keepers, taken)
    return plan


@dataclass(frozen=True)
class _Row:
    file: IndexedFile
    status: str
    root: bytes
    relpath: bytes


def _load_rows(store: Store, ids: set[Any]) -> dict[int, _Row]:
    found = indexed_rows(store, (i for i in ids if isinstance(i, int)))
    return {image_id: _row(row) for image_id, row in found.items()}


def _row(row: IndexedRow) -> _Row:
    indexed = IndexedFile(
        row.image_id, row.path, row.size, row.mtime_ns, row.content_hash, row.device, row.inode
    )
    return _Row(indexed, row.status, row.root, row.relpath)


def _root_labels(store: Store) -> dict[bytes, bytes]:
    """The quarantine sub-folder of each root: its name, made unique when two roots share it."""
    roots = [r.path for r in library.roots(store)]
    names = [os.path.basename(r.rstrip(b"/")) or b"root" for r in roots]
    labels = {}
    for root, name in zip(roots, names, strict=True):
        if names.count(name) > 1:
            name += b"-" + hashlib.blake2b(root, digest_size=4).hexdigest().encode()
        labels[root] = name
    return labels


def _report_path(member: dict[str, Any]) -> bytes | None:
    encoded = member.get("path_bytes_b64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
    path = member.get("path")
    return os.fsencode(path) if isinstance(path, str) else None


def _plan_cluster(
    plan: ActionPlan,
    cluster: dict[str, Any],
    rows: dict[int, _Row],
    labels: dict[bytes, bytes],
    keepers: set[Any],
    taken: set[int],
) -> None:
    cid = cluster.get("id") if isinstance(cluster.get("id"), int) else 0
    assert isinstance(cid, int)
    members = [m for m in cluster.get("members", []) if isinstance(m, dict)]
    member_ids = [m.get("image_id") for m in members]
    keeper_id = cluster.get("keeper")

    def refuse_cluster(reason: str) -> None:
        plan.refused.append(Refusal(cid, None, f"cluster {cid}", reason))

    if keeper_id not in member_ids or not isinstance(keeper_id, int):
        refuse_cluster(f"its keeper {keeper_id!r} is not one of its members")
        return
    if len(set(member_ids)) != len(member_ids):
        refuse_cluster("it lists the same image twice")
        return
    keeper = rows.get(keeper_id)
    if keeper is None or keeper.status != PRESENT:
        state = "not in the index" if keeper is None else keeper.status
        refuse_cluster(f"its keeper (image {keeper_id}) is {state}")
        return
    keeper_member = next(m for m in members if m.get("image_id") == keeper_id)
    stale = _stale(keeper_member, keeper)
    if stale:
        refuse_cluster(f"its keeper: {stale}")
        return
    keeper_real = os.path.realpath(keeper.file.path)
    candidates: list[tuple[dict[str, Any], _Row]] = []
    for member in members:
        image_id = member.get("image_id")
        if image_id == keeper_id:
            continue
        shown = member.get("path") if isinstance(member.get("path"), str) else f"#{image_id}"
        assert isinstance(shown, str)

        def refuse(reason: str, image_id: Any = image_id, shown: str = shown) -> None:
            plan.refused.append(
                Refusal(cid, image_id if isinstance(image_id, int) else None, shown, reason)
            )

        row = rows.get(image_id) if isinstance(image_id, int) else None
        if row is None:
            refuse("not in the index")
            continue
        if (row.file.device, row.file.inode) == (keeper.file.device, keeper.file.inode) or (
            os.path.realpath(row.file.path) == keeper_real
        ):
            refuse_cluster(
                f"{display(row.file.path)} is its keeper {display(keeper.file.path)} "
                "through another path (the same file): acting on it would lose the keeper"
            )
            return
        candidates.append((member, row))
    for member, row in candidates:
        image_id, shown = row.file.image_id, display(row.file.path)
        reason = _member_problem(member, row, keepers, taken)
        if reason is None and plan.action == HARDLINK and row.file.device != keeper.file.device:
            reason = (
                "its keeper is on another filesystem and hard links cannot cross "
                "filesystems (use --symlink or --move-to for it)"
            )
        if reason:
            plan.refused.append(Refusal(cid, image_id, shown, reason))
            continue
        taken.add(image_id)
        destination = None
        if plan.quarantine is not None:
            destination = os.path.join(plan.quarantine, labels[row.root], row.relpath)
        lost = metadata_lost(keeper_member, member)
        plan.actions.append(PlannedAction(cid, row.file, keeper.file, destination, lost))


def metadata_lost(keeper: dict[str, Any], member: dict[str, Any]) -> str | None:
    """The camera's metadata (camera, date taken: the report's fields) that ``member`` has
    and ``keeper`` lacks, in words, or None."""
    lost = []
    camera, taken = member.get("camera"), member.get("taken_at")
    if isinstance(camera, str) and camera and not keeper.get("camera"):
        lost.append(f"camera {camera}")
    if isinstance(taken, str) and taken and not keeper.get("taken_at"):
        lost.append(f"date taken {taken[:10]}")
    return ", ".join(lost) or None


def _member_problem(
    member: dict[str, Any], row: _Row, keepers: set[Any], taken: set[int]
) -> str | None:
    if row.status != PRESENT:
        return f"the index holds it as {row.status}"
    if row.file.image_id in keepers:
        return "it is the keeper of another cluster"
    if row.file.image_id in taken:
        return "another cluster already lists it"
    return _stale(member, row)


def _stale(member: dict[str, Any], row: _Row) -> str | None:
    """Why the report's entry does not describe what the index holds, if it does not."""
    reported = _report_path(member)
    if reported is not None and os.path.normpath(reported) != os.path.normpath(row.file.path):
        return (
            f"the report names it {display(reported)} but the index has "
            f"{display(row.file.path)}: the report is older than the index, write it again"
        )
    expected = member.get("content_hash")
    if isinstance(expected, str) and expected != row.file.content_hash.hex():
        return "its content changed since the report was written: write the report again"
    return None


LAST_REPORT = "last report"


def report_source(path: str | os.PathLike[str] | None) -> str:
    """How a plan names its report in the history: the file, or the last report made."""
    return os.path.abspath(os.fspath(path)) if path is not None else LAST_REPORT
