"""Index runs: the row each run writes, which is also the lock that keeps two index runs (or an
index and an apply) from writing one database at once.

The row is written first and the check made second, so of two runs starting together the later
one (higher id) always sees the earlier one and steps back. ``locks`` decides whether another
run's row still holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError

from ..errors import DatabaseBusyError, DatabaseError
from .engine import Store, translate_operational_error
from .locks import process_alive, running_apply
from .schema import Root, Run


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def begin_index_run(store: Store, root_id: int, *, break_lock: bool = False) -> int:
    """Register an index run of this process; its id. Raises ``DatabaseBusyError`` when another
    live dedupdb process is indexing, or an apply or undo runs.

    A run of this host whose process is gone was killed: it is marked interrupted. A run of
    another host cannot be checked: it holds the lock until it ends or the user breaks it
    (``break_lock``).
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


def end_index_run(
    store: Store, run_id: int, root_id: int, *, interrupted: bool, summary: dict[str, Any]
) -> None:
    """Record how the run ended and its summary, releasing the lock; a finished run also
    stamps its root. If even this fails (the database went away), nothing is raised: the next
    run sees this process gone and marks the run interrupted."""
    with contextlib.suppress(OperationalError), store.transaction() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                status="interrupted" if interrupted else "done",
                finished_at=_now(),
                summary=json.dumps(summary),
            )
        )
        if not interrupted:
            session.execute(update(Root).where(Root.id == root_id).values(last_indexed_at=_now()))


def database_error(store: Store, err: BaseException) -> DatabaseError | None:
    """The error to show for an exception the database raised (locked, gone, damaged), or
    None when ``err`` did not come from the database."""
    if isinstance(err, OperationalError):
        return translate_operational_error(err, store.url)
    return None


__all__ = ["begin_index_run", "database_error", "end_index_run"]
