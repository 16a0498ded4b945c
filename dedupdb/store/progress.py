"""How runs go and what the library holds over time: the ``run_progress`` rows a running index,
apply or undo updates (``tracking.Recorder``), the figures of each report made
(``report_totals``), and the reads behind ``status --watch``, ``metrics`` and the dashboard.

Writing progress never stops a run: a database that refuses an update (busy, gone) only costs
that update (``write_progress`` says False).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, TextClause, bindparam, desc, func, select, text
from sqlalchemy.exc import DBAPIError

from .engine import Store
from .schema import PRESENT, Failure, Image, ReportTotals, Root, RunProgress

# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ProgressFigures:
    """What a run's row says as it goes: written at each update."""

    state: str
    phase: str
    updated_at: datetime
    progressed_at: datetime
    finished_at: datetime | None
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
    workers: str  # JSON
    errors: str  # JSON
    message: str | None


@dataclass(frozen=True)
class ProgressRow(ProgressFigures):
    """A run's row as last written."""

    id: int
    kind: str
    index_run_id: int | None
    apply_run_id: int | None
    target: str
    host: str
    pid: int
    started_at: datetime


@dataclass(frozen=True)
class TotalsRow:
    """The figures of one report made, with its settings (JSON)."""

    made_at: datetime
    images: int
    clusters: int
    duplicates: int
    reclaimable_bytes: int
    settings: str


@dataclass(frozen=True)
class LibraryCounts:
    """What the database holds now (``progress.library_totals``)."""

    roots: int
    by_status: dict[str, int]
    failures: dict[str, int]
    exact_duplicates: int
    exact_reclaimable_bytes: int


# ----------------------------------------------------------------------------- writes

# The row's statements as plain SQL built from the model's columns (each bound with its
# column's type, so values are stored as the ORM stores them). SQLAlchemy compiles a Core or
# ORM statement on its first use in a process, a few milliseconds for twenty columns: more
# than all of a run's updates cost together.
_TABLE = cast(Table, RunProgress.__table__)
_FIGURES = tuple(f.name for f in fields(ProgressFigures))
_ROW = tuple(f.name for f in fields(ProgressRow))


def _typed(sql: str, names: Sequence[str]) -> TextClause:
    return text(sql).bindparams(*(bindparam(n, type_=_TABLE.c[n].type) for n in names))


def _insert_statement(returning: bool) -> TextClause:
    names = [c.name for c in _TABLE.columns if c.name != "id"]
    sql = (
        f"INSERT INTO {_TABLE.name} ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + n for n in names)})"
    )
    return _typed(sql + (" RETURNING id" if returning else ""), names)


def _update_statement() -> TextClause:
    sql = f"UPDATE {_TABLE.name} SET {', '.join(f'{n} = :{n}' for n in _FIGURES)} WHERE id = :id"
    return _typed(sql, _FIGURES)


_UPDATE = _update_statement()
_INSERT = {True: _insert_statement(returning=True), False: _insert_statement(returning=False)}


def _values(figures: ProgressFigures) -> dict[str, Any]:
    return {name: getattr(figures, name) for name in _FIGURES}


def start_progress(
    store: Store,
    *,
    kind: str,
    target: str,
    host: str,
    pid: int,
    started_at: datetime,
    figures: ProgressFigures,
    index_run_id: int | None = None,
    apply_run_id: int | None = None,
) -> int:
    """Create a run's progress row; returns its id."""
    values = {
        "kind": kind,
        "index_run_id": index_run_id,
        "apply_run_id": apply_run_id,
        "target": target,
        "host": host,
        "pid": pid,
        "started_at": started_at,
        **_values(figures),
    }
    # SQLite gives the new row's id as the cursor's lastrowid (RETURNING needs 3.35+).
    sqlite = store.dialect == "sqlite"
    with store.engine.begin() as conn:
        result = conn.execute(_INSERT[not sqlite], values)
        return int(result.lastrowid if sqlite else result.scalar_one())


def write_progress(store: Store, row_id: int, figures: ProgressFigures) -> bool:
    """Update a run's progress row; False when the database refused (busy or gone: the next
    update, or the reader's checks, tell)."""
    try:
        with store.engine.begin() as conn:
            conn.execute(_UPDATE, {"id": row_id, **_values(figures)})
    except DBAPIError:
        return False
    return True


def _progress_rows(store: Store, statement: Any) -> list[ProgressRow]:
    with store.session() as session:
        rows = session.execute(statement).scalars().all()
        return [ProgressRow(**{name: getattr(r, name) for name in _ROW}) for r in rows]


def running_progress(store: Store) -> list[ProgressRow]:
    """The rows that say running (some may be of killed runs), oldest first."""
    statement = select(RunProgress).where(RunProgress.state == "running")
    return _progress_rows(store, statement.order_by(RunProgress.id))


def progress_row(store: Store, row_id: int) -> ProgressRow | None:
    found = _progress_rows(store, select(RunProgress).where(RunProgress.id == row_id))
    return found[0] if found else None


def latest_progress(store: Store, *, limit: int, kinds: Sequence[str] = ()) -> list[ProgressRow]:
    """The latest ``limit`` rows (of ``kinds``, or of every kind), newest first."""
    statement = select(RunProgress).order_by(desc(RunProgress.id)).limit(limit)
    if kinds:
        statement = statement.where(RunProgress.kind.in_(kinds))
    return _progress_rows(store, statement)


def library_counts(store: Store) -> LibraryCounts:
    """Images by status and failures by kind now, and the exact duplicates counted now
    (cheap: grouped by content hash, which is indexed)."""
    with store.session() as session:
        by_status = {
            str(s): int(n)
            for s, n in session.execute(select(Image.status, func.count()).group_by(Image.status))
        }
        failures = {
            str(k): int(n)
            for k, n in session.execute(select(Failure.kind, func.count()).group_by(Failure.kind))
        }
        groups = (
            select(
                (func.count() - 1).label("extra"),
                (func.sum(Image.size) - func.max(Image.size)).label("bytes"),
            )
            .where(Image.status == PRESENT)
            .group_by(Image.content_hash)
            .having(func.count() > 1)
            .subquery()
        )
        extra, extra_bytes = session.execute(
            select(
                func.coalesce(func.sum(groups.c.extra), 0),
                func.coalesce(func.sum(groups.c.bytes), 0),
            )
        ).one()
        roots = session.execute(select(func.count()).select_from(Root)).scalar_one()
    return LibraryCounts(int(roots), by_status, failures, int(extra), int(extra_bytes))


def report_totals(store: Store, *, limit: int, same_settings: bool) -> list[TotalsRow]:
    """The figures of the latest ``limit`` reports made, newest first; with
    ``same_settings``, only those made with the latest one's settings."""
    with store.session() as session:
        statement = select(ReportTotals).order_by(desc(ReportTotals.id)).limit(limit)
        if same_settings:
            latest = select(ReportTotals.settings).order_by(desc(ReportTotals.id)).limit(1)
            statement = statement.where(ReportTotals.settings == latest.scalar_subquery())
        return [
            TotalsRow(
                r.made_at, r.images, r.clusters, r.duplicates, r.reclaimable_bytes, r.settings
            )
            for r in session.execute(statement).scalars()
        ]


__all__ = [
    "LibraryCounts",
    "ProgressFigures",
    "ProgressRow",
    "TotalsRow",
    "latest_progress",
    "library_counts",
    "progress_row",
    "report_totals",
    "running_progress",
    "start_progress",
    "write_progress",
]
