"""Run locks: which index or apply run holds the database.

A run row with status ``running`` (index) or ``running``/``undoing`` (apply) is the lock; it
holds while its process lives. The rows are written by the stages' store functions; this
module decides whether a row still holds.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .schema import ApplyRun, Run


def process_alive(pid: int) -> bool:
    """Whether a process that recorded a run in the database (on this host) still runs.

    Used by the index and apply run locks: a pid that is gone, or was recycled by a process
    that is not dedupdb, does not hold a lock.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"dedupdb" in handle.read()
    except OSError:
        return True


def running_index(session: Session) -> Run | None:
    """An index run that holds the database: one of another host, or of a live process of this
    host (never this process: a row it left behind is stale). Dead runs are not returned."""
    found: Run | None = _holder(
        session, select(Run).where(Run.status == "running").order_by(Run.id)
    )
    return found


def running_apply(session: Session) -> ApplyRun | None:
    """An apply, resume or undo that holds the database (see ``running_index``)."""
    statement = select(ApplyRun).where(ApplyRun.status.in_(("running", "undoing")))
    found: ApplyRun | None = _holder(session, statement.order_by(ApplyRun.id))
    return found


def _holder(session: Session, statement: Any) -> Any:  # Run | ApplyRun | None
    host = socket.gethostname()
    for run in session.execute(statement).scalars():
        if run.host != host or (run.pid != os.getpid() and process_alive(run.pid)):
            return run
    return None
