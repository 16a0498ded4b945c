"""The index's reads and writes of images, roots, failures and local features.

Planning reads what is stored about a root (``stored_files``, ``recorded_failures``,
``linked_files``, ``known_prefixes``); ``ImageWriter`` commits each file's outcome in its own
transaction, so that each committed row is a checkpoint. Callers pass and get plain values and
typed records: no session, row object or status string leaves this module.

``ImageWriter.write_fingerprint`` is the one write path for a fingerprinted file on every
backend. On SQLite it inserts the row of a path that had none through the driver's own
connection (the same compiled upsert, parameters converted by the columns' types): without
SQLAlchemy's per-execution set-up, which was half the writer's CPU per file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timezone
from enum import Enum
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..fingerprint.records import IMAGE_FIELDS, Fingerprint, PackedFeatures
from ..hashparams import HashParams
from ..walk import FileEntry, display
from .engine import HASH_PARAMS_KEY, Store
from .schema import FAILED, LINKED, MISSING, PRESENT, SKIPPED, Failure, Image, LocalFeatures, Root


class StoredFile(NamedTuple):
    """What planning needs of a stored image: whether its file changed, whether it is present."""

    id: int
    size: int
    mtime_ns: int
    hash_size: int
    present: bool


class LinkedFile(NamedTuple):
    """A path `dedupdb apply` replaced by a link to its keeper, as recorded: its device and
    inode as ``os.stat`` gives them (unsigned)."""

    relpath: bytes
    device: int
    inode: int


class Known(Enum):
    """What ``ImageWriter.write_known`` did with bytes the database holds."""

    MOVED = "moved"  # the missing row of these bytes now has this path
    NEW = "new"  # a new row, its content copied from a row of the same bytes
    CHANGED = "changed"  # the row at this path, its content replaced by a copy
    UNKNOWN = "unknown"  # no row holds them after all (a hash-prefix collision): decode


class KnownWrite(NamedTuple):
    outcome: Known
    moved_id: int | None = None  # the row moved (``Known.MOVED``)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def signed64(value: int) -> int:
    """Device and inode numbers are unsigned 64-bit; databases store signed 64-bit."""
    return value - (1 << 64) if value >= (1 << 63) else value


def unsigned64(value: int) -> int:
    """A stored device or inode number (``signed64``) as ``os.stat`` gives it."""
    return value & ((1 << 64) - 1)


# ----------------------------------------------------------------------------- roots, settings


def ensure_root(store: Store, root: bytes) -> int:
    """The root's row id, inserted if new: in one statement that lets a concurrent insert of
    the same root win (two runs started together on one folder), then read back."""
    with store.transaction() as session:
        session.execute(
            store.insert(Root)
            .values(path=root, display_path=display(root), created_at=_now())
            .on_conflict_do_nothing(index_elements=["path"])
        )
        return int(session.execute(select(Root.id).where(Root.path == root)).scalar_one())


def count_present(store: Store, root_id: int) -> int:
    """How many images of the root are present."""
    with store.session() as session:
        return int(
            session.execute(
                select(func.count(Image.id)).where(
                    Image.root_id == root_id, Image.status == PRESENT
                )
            ).scalar_one()
        )


def stored_hash_params(store: Store) -> HashParams | None:
    """The hash parameters the database was indexed with (None: never indexed)."""
    stored = store.get_setting(HASH_PARAMS_KEY)
    return None if stored is None else HashParams(stored["hash_size"], stored["version"])


def save_hash_params(store: Store, params: HashParams) -> None:
    with store.transaction() as session:
        value = {"hash_size": params.hash_size, "version": params.version}
        store.set_setting(session, HASH_PARAMS_KEY, value)


# ----------------------------------------------------------------------------- planning


def stored_files(store: Store, root_id: int) -> dict[bytes, StoredFile]:
    """Every stored image of the root, by path."""
    statement = select(
        Image.relpath, Image.id, Image.size, Image.mtime_ns, Image.hash_size, Image.status
    ).where(Image.root_id == root_id)
    with store.session() as session:
        return {
            relpath: StoredFile(id_, size, mtime_ns, hash_size, status == PRESENT)
            for relpath, id_, size, mtime_ns, hash_size, status in session.execute(statement)
        }


def recorded_failures(store: Store, root_id: int) -> dict[bytes, tuple[int, int]]:
    """The (size, mtime_ns) of each recorded failure of the root, by path."""
    statement = select(Failure.relpath, Failure.size, Failure.mtime_ns).where(
        Failure.root_id == root_id
    )
    with store.session() as session:
        return {relpath: (size, mtime) for relpath, size, mtime in session.execute(statement)}


def linked_files(store: Store, root_id: int) -> list[LinkedFile]:
    """The root's paths that `dedupdb apply` replaced by a link to their keeper."""
    statement = select(Image.relpath, Image.device, Image.inode).where(
        Image.root_id == root_id, Image.status == LINKED
    )
    with store.session() as session:
        return [
            LinkedFile(relpath, unsigned64(device), unsigned64(inode))
            for relpath, device, inode in session.execute(statement)
        ]


def update_presence(
    store: Store,
    root_id: int,
    missing: list[int],
    present: list[int],
    stale_failures: list[bytes],
) -> None:
    """Mark rows missing (kept, not purged) and present again, and drop the failures of
    paths that are gone, in one transaction."""
    with store.transaction() as session:
        for ids, status in ((missing, MISSING), (present, PRESENT)):
            for chunk in _chunks(ids, 500):
                session.execute(update(Image).where(Image.id.in_(chunk)).values(status=status))
        for paths in _chunks(stale_failures, 500):
            session.execute(
                delete(Failure).where(Failure.root_id == root_id, Failure.relpath.in_(paths))
            )


def known_prefixes(store: Store, hash_size: int) -> dict[int, frozenset[bytes]]:
    """For each size of a stored file, the 8-byte prefixes of their content hashes: what a
    worker needs to recognise a move or an exact copy (the same size, then the same hash)
    without decoding it."""
    with store.session() as session:
        rows = session.execute(
            select(Image.content_hash, Image.size).where(Image.hash_size == hash_size)
        )
        by_size: dict[int, set[bytes]] = {}
        for content_hash, size in rows:
            by_size.setdefault(size, set()).add(content_hash[:8])
        return {size: frozenset(prefixes) for size, prefixes in by_size.items()}


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ----------------------------------------------------------------------------- writing


# The columns of an image row that come from the file's path and stat, after its fingerprint's.
_FILE_FIELDS = (
    "root_id", "relpath", "display_path", "status", "size", "mtime_ns", "device", "inode",
    "indexed_at",
)  # fmt: skip
_ROW_FIELDS = IMAGE_FIELDS + _FILE_FIELDS


class ImageWriter:
    """Writes one root's files, each in its own transaction.

    ``stored_paths`` and ``failure_paths``: the paths that had an image row / a failure row
    when the run was planned (None: unknown, always query). Each path is written once a run,
    so a path in neither has none until its own write, and its lookups are skipped (a superset
    is safe: it only costs the query).
    """

    def __init__(
        self,
        store: Store,
        root_id: int,
        stored_paths: frozenset[bytes] | None = None,
        failure_paths: frozenset[bytes] | None = None,
    ) -> None:
        self.store = store
        self.root_id = root_id
        self.stored_paths = stored_paths
        self.failure_paths = failure_paths
        self._sqlite = store.dialect == "sqlite"
        # Built once with the values bound at execution: constructing a statement per file
        # (coercions, a fresh cache key) cost more than running it.
        images, failures = cast(Table, Image.__table__), cast(Table, Failure.__table__)
        self._row_at_path = select(images.c.id).where(
            images.c.root_id == root_id, images.c.relpath == bindparam("path")
        )
        self._delete_failure = delete(failures).where(
            failures.c.root_id == root_id, failures.c.relpath == bindparam("path")
        )
        insert = store.insert(images)
        self._upsert = insert.on_conflict_do_update(
            index_elements=["root_id", "relpath"],
            set_={k: insert.excluded[k] for k in _ROW_FIELDS if k not in ("root_id", "relpath")},
        )
        self._driver: tuple[str, list[tuple[int, Any]]] | None = None

    def write_fingerprint(self, entry: FileEntry, fingerprint: Fingerprint) -> bool:
        """Store a fingerprinted file's row (and its local features, if any) at its path,
        replacing the row there; True when a row was there."""
        if fingerprint.local_features is not None:
            self._write_features(fingerprint.content_hash, fingerprint.local_features)
        values = self._row(entry, fingerprint)
        if self._insert_new_sqlite(entry, values):
            return False
        # Elsewhere (PostgreSQL, a changed file, a path with a failure row) on a plain Core
        # connection: one transaction, up to three statements, no ORM session's set-up.
        with self.store.engine.begin() as conn:
            return self._upsert_row(conn, entry, values)

    def write_known(self, entry: FileEntry, content_hash: bytes, hash_size: int) -> KnownWrite:
        """Bytes already indexed: move a missing row of this root that holds them here, or copy
        the content of a row that holds them (this root's first, present ones first)."""
        with self.store.transaction() as session:
            donors = session.execute(
                select(Image)
                .where(Image.content_hash == content_hash)
                .where(Image.hash_size == hash_size)
                .order_by(Image.root_id != self.root_id, Image.status != MISSING, Image.id)
            ).scalars()
            donor = next(iter(donors), None)
            if donor is None:  # a prefix collision, or the donor was pruned meanwhile
                return KnownWrite(Known.UNKNOWN)
            at_path = session.execute(
                select(Image.id).where(
                    Image.root_id == self.root_id, Image.relpath == entry.relpath
                )
            ).scalar_one_or_none()
            if donor.root_id == self.root_id and donor.status == MISSING and at_path is None:
                donor.relpath = entry.relpath
                donor.display_path = display(entry.relpath)
                donor.status = PRESENT
                donor.size, donor.mtime_ns = entry.size, entry.mtime_ns
                donor.device, donor.inode = signed64(entry.device), signed64(entry.inode)
                session.execute(self._delete_failure, {"path": entry.relpath})
                return KnownWrite(Known.MOVED, donor.id)
            copied = Fingerprint(*(getattr(donor, name) for name in IMAGE_FIELDS))
            existed = self._upsert_row(session, entry, self._row(entry, copied))
        return KnownWrite(Known.CHANGED if existed else Known.NEW)

    def write_failure(self, entry: FileEntry, reason: str, *, skipped: bool = False) -> None:
        """Record why a file is not indexed (``skipped``: deliberately), replacing its row: a
        file that changed into something unreadable no longer has the stored content."""
        with self.store.transaction() as session:
            session.execute(
                delete(Image).where(Image.root_id == self.root_id, Image.relpath == entry.relpath)
            )
            values = {
                "root_id": self.root_id,
                "relpath": entry.relpath,
                "display_path": display(entry.relpath),
                "kind": SKIPPED if skipped else FAILED,
                "reason": reason,
                "size": entry.size,
                "mtime_ns": entry.mtime_ns,
                "recorded_at": _now(),
            }
            statement = self.store.insert(Failure).values(**values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["root_id", "relpath"],
                    set_={
                        k: statement.excluded[k] for k in values if k not in ("root_id", "relpath")
                    },
                )
            )

    # ------------------------------------------------------------------------- internals

    def _row(self, entry: FileEntry, fingerprint: Fingerprint) -> list[Any]:
        """The row's values in ``_ROW_FIELDS`` order."""
        return [
            *fingerprint[: len(IMAGE_FIELDS)],
            self.root_id,
            entry.relpath,
            display(entry.relpath),
            PRESENT,
            entry.size,
            entry.mtime_ns,
            signed64(entry.device),
            signed64(entry.inode),
            _now(),
        ]

    def _write_features(self, content_hash: bytes, features: PackedFeatures) -> None:
        """One row per content hash, replaced if present."""
        table = cast(Table, LocalFeatures.__table__)
        insert = self.store.insert(table)
        row = asdict(features)
        values = {"content_hash": content_hash, **row}
        statement = insert.on_conflict_do_update(
            index_elements=["content_hash"], set_={k: insert.excluded[k] for k in row}
        )
        with self.store.engine.begin() as conn:
            conn.execute(statement, values)

    def _upsert_row(self, conn: Session | Connection, entry: FileEntry, values: list[Any]) -> bool:
        """Insert or replace the row at this path; True when a row was already there."""
        path = {"path": entry.relpath}
        existing = None
        if self.stored_paths is None or entry.relpath in self.stored_paths:
            existing = conn.execute(self._row_at_path, path).scalar_one_or_none()
        conn.execute(self._upsert, dict(zip(_ROW_FIELDS, values, strict=True)))
        if self.failure_paths is None or entry.relpath in self.failure_paths:
            conn.execute(self._delete_failure, path)
        return existing is not None

    def _insert_new_sqlite(self, entry: FileEntry, values: list[Any]) -> bool:
        """On SQLite, store the row of a path the plan knows has no row and no failure through
        the driver's connection: the same compiled upsert, parameters converted by the
        columns' own types, one transaction. False, doing nothing, in every other case."""
        if (
            not self._sqlite
            or self.stored_paths is None
            or entry.relpath in self.stored_paths
            or self.failure_paths is None
            or entry.relpath in self.failure_paths
        ):
            return False
        sql, binds = self._driver_statement()
        params = [values[i] if convert is None else convert(values[i]) for i, convert in binds]
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

    def _driver_statement(self) -> tuple[str, list[tuple[int, Any]]]:
        """The upsert compiled for SQLite (positional parameters), with the position in
        ``_ROW_FIELDS`` and bind processor of each parameter, built once."""
        if self._driver is None:
            dialect = self.store.engine.dialect
            compiled = self._upsert.compile(dialect=dialect, column_keys=list(_ROW_FIELDS))
            position = {name: i for i, name in enumerate(_ROW_FIELDS)}
            binds = [
                (position[n], compiled.binds[n].type.bind_processor(dialect))
                for n in compiled.positiontup or ()
            ]
            self._driver = (compiled.string, binds)
        return self._driver


__all__ = [
    "ImageWriter",
    "Known",
    "KnownWrite",
    "LinkedFile",
    "StoredFile",
    "count_present",
    "ensure_root",
    "known_prefixes",
    "linked_files",
    "recorded_failures",
    "save_hash_params",
    "signed64",
    "stored_files",
    "stored_hash_params",
    "update_presence",
]
