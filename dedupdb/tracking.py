"""Recording how a run goes, as it goes, in the database (the ``run_progress`` table), so that
it can be watched from any shell or machine: ``dedupdb status --watch``, ``dedupdb metrics``
and the web dashboard read what this writes (``progress``).

A run updates its one row at most once per ``interval`` seconds, whatever the files' pace:
``tick`` after each file costs a clock read, the update itself one small UPDATE statement.
No thread is started for it: while the indexing process has one thread, its workers start by
fork (see ``workers``), and a run that gets no result for a while (every worker on a slow
file) has nothing new to say anyway. A killed run leaves its row saying ``running``; readers
recognise it by its dead process or its stale heartbeat (``progress.effective_state``).

Recording never stops a run: a database that refuses an update (busy, gone) only costs that
update.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from .store import Store
from .store import progress as stored
from .store.progress import ProgressFigures

# Kinds of run.
INDEX, APPLY, RESUME, UNDO = "index", "apply", "resume", "undo"
# States a row records; a dead run's row still says running (see progress.effective_state).
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
# Phases of a running run.
PLANNING, WORKING = "planning", "working"

# At most one update per this many seconds.
INTERVAL_S = 1.0
# The current rate is the files done over about this many seconds.
RATE_WINDOW_S = 10.0
# The latest errors kept in the row (each numbered, so a watcher sees which are new).
ERRORS_KEPT = 20
# Counts a run's code keeps in its own objects and hands over at each update.
COUNT_NAMES = ("new", "changed", "moved", "unchanged", "skipped", "failed")

# (pid, or a Dask worker's address; path of the file it is on or None when idle; seconds on it
# or None)
WorkerState = tuple[int | str, str | None, float | None]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Recorder:
    """One run's progress row. The run sets ``planned``, ``seen``, ``done`` and ``bytes_read``
    as it goes and calls ``tick``; ``counts`` (read at each update) gives the rest of its
    counts (without it, the errors of each kind are counted), ``workers`` what each worker is
    on."""

    def __init__(
        self,
        store: Store,
        row_id: int,
        *,
        counts: Callable[[], Mapping[str, int]] | None = None,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.id = row_id
        self.counts = counts
        self.workers: Callable[[], list[WorkerState]] | None = None
        self.interval = interval
        self.clock = clock
        self.phase = PLANNING
        self.planned = 0
        self.seen = 0
        self.done = 0
        self.bytes_read = 0
        self._errors: collections.deque[dict[str, Any]] = collections.deque(maxlen=ERRORS_KEPT)
        self._error_number = 0
        self._error_counts: collections.Counter[str] = collections.Counter()
        self._last = clock()
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._samples.append((self._last, 0))
        self._written: tuple[Any, ...] = ()
        self._progressed = _now()
        self._closed = False

    @classmethod
    def start(
        cls,
        store: Store,
        kind: str,
        target: str,
        *,
        index_run_id: int | None = None,
        apply_run_id: int | None = None,
        planned: int = 0,
        counts: Callable[[], Mapping[str, int]] | None = None,
        interval: float = INTERVAL_S,
    ) -> Recorder:
        """Create the run's row (state running) and its recorder."""
        now = _now()
        figures = ProgressFigures(
            state=RUNNING,
            phase=PLANNING if kind == INDEX else WORKING,
            updated_at=now,
            progressed_at=now,
            finished_at=None,
            planned=planned,
            **dict.fromkeys(("seen", "done", "bytes_read", *COUNT_NAMES), 0),
            rate=0.0,
            workers="[]",
            errors="[]",
            message=None,
        )
        row_id = stored.start_progress(
            store,
            kind=kind,
            target=target,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            figures=figures,
            index_run_id=index_run_id,
            apply_run_id=apply_run_id,
        )
        recorder = cls(store, row_id, counts=counts, interval=interval)
        recorder.phase = PLANNING if kind == INDEX else WORKING
        recorder.planned = planned
        return recorder

    def tick(self) -> None:
        """Update the row if the last update is ``interval`` seconds old."""
        if self.clock() - self._last >= self.interval:
            self.flush()

    def error(self, path: str, reason: str, kind: str = FAILED) -> None:
        """A file that failed (or an action skipped): shown by watchers as it happens."""
        self._error_number += 1
        self._error_counts[kind] += 1
        self._errors.append(
            {"number": self._error_number, "path": path, "reason": reason, "kind": kind}
        )

    def flush(self) -> None:
        """Write the current figures now."""
        if self._closed:
            return
        stored.write_progress(self.store, self.id, self._figures())

    def finish(self, state: str, message: str | None = None) -> None:
        """The run ended: the final figures, how it ended, and why when it failed."""
        if self._closed:
            return
        figures = self._figures()
        final = dataclasses.replace(
            figures, state=state, finished_at=figures.updated_at, message=message, workers="[]"
        )
        stored.write_progress(self.store, self.id, final)
        self._closed = True

    def _figures(self) -> ProgressFigures:
        now, stamp = self.clock(), _now()
        self._last = now
        # Without a source of counts (apply, undo), the errors are the counts: skipped actions.
        source = dict(self.counts() if self.counts is not None else self._error_counts)
        counts = {name: int(source.get(name, 0)) for name in COUNT_NAMES}
        moved = (self.phase, self.seen, self.done, *counts.values())
        if moved != self._written:
            self._progressed = stamp
            self._written = moved
        return ProgressFigures(
            state=RUNNING,
            phase=self.phase,
            updated_at=stamp,
            progressed_at=self._progressed,
            finished_at=None,
            planned=self.planned,
            seen=self.seen,
            done=self.done,
            **counts,
            bytes_read=self.bytes_read,
            rate=self._rate(now),
            workers=json.dumps(self._worker_states()),
            errors=json.dumps(list(self._errors)),
            message=None,
        )

    def _rate(self, now: float) -> float:
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        then, before = self._samples[0]
        return round((self.done - before) / (now - then), 3) if now > then else 0.0

    def _worker_states(self) -> list[dict[str, Any]]:
        if self.workers is None:
            return []
        return [
            {"pid": pid, "path": path, "seconds": None if seconds is None else round(seconds, 1)}
            for pid, path, seconds in self.workers()
        ]
