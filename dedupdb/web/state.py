"""What the server holds between requests: the current report, the decisions, plans and jobs.

The report is built in a background thread (``build_report``, the CLI's), at start and again
after whatever changes it (a "not duplicates" decision, an apply or undo); pages are served from
the last one built meanwhile. Apply, resume and undo run one at a time in a thread as ``Job``s
whose progress the browser polls; the database's own locks (``actions``) still guard against
another dedupdb process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import review
from ..actions import ActionPlan, ApplyResult, UndoResult
from ..errors import DedupdbError
from ..report import Report, ReportOptions, actionable, build_report, cluster_membership
from ..store import Store
from ..store.reports import LAST_REPORT_DOCUMENT_KEY, remember_report
from .listing import ClusterInfo, Listing, describe_report

_SETTINGS = ("hash", "threshold", "rotations", "ssim", "second_hash", "crops", "turned_crops",
             "exact", "deep")  # fmt: skip


def last_options(store: Store) -> ReportOptions:
    """The settings of the last report made (``dedupdb report --prefer ...``), so the UI shows
    and records that report again rather than one with other settings; the defaults when
    there is none (or it cannot be read)."""
    document = store.get_setting(LAST_REPORT_DOCUMENT_KEY)
    settings = document.get("settings") if isinstance(document, dict) else None
    if not isinstance(settings, dict):
        return ReportOptions()
    values: dict[str, Any] = {k: settings[k] for k in _SETTINGS if k in settings}
    for name in ("prefer", "avoid"):
        if isinstance(settings.get(name), list):
            values[name] = tuple(str(p) for p in settings[name])
    try:
        return ReportOptions(**values)
    except (DedupdbError, TypeError, ValueError):
        return ReportOptions()


class ReportHolder:
    """The latest report and its listing; ``rebuild`` makes a new one in the background."""

    def __init__(self, store: Store, options: ReportOptions) -> None:
        self.store = store
        self.options = options
        self.report: Report | None = None
        self.listing: Listing | None = None
        self.error: str | None = None
        self.built_in: float = 0.0
        self._lock = threading.Lock()
        self._building = False
        self._again = False
        self._done = threading.Condition(self._lock)
        self.generation = 0

    @property
    def building(self) -> bool:
        return self._building

    def rebuild(self) -> None:
        """Build the report again (now, in a thread); a request while one is building makes
        one more build follow it, so the result reflects everything asked before."""
        with self._lock:
            if self._building:
                self._again = True
                return
            self._building = True
        threading.Thread(target=self._loop, name="dedupdb-report", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self._build_once()
            with self._lock:
                if not self._again:
                    self._building = False
                    self.generation += 1
                    self._done.notify_all()
                    return
                self._again = False

    def _build_once(self) -> None:
        started = time.perf_counter()
        try:
            report = build_report(self.store, self.options)
            self.install(report)
            # As `dedupdb report` does: `dedupdb not-duplicate --cluster N` then means the
            # cluster numbered N here, and `dedupdb apply` acts on the report reviewed here.
            remember_report(self.store, cluster_membership(report), actionable(report))
        except DedupdbError as err:
            self.error = str(err)
            return
        except Exception as err:  # a bug: shown on the page rather than a dead thread
            self.error = f"the report could not be built: {type(err).__name__}: {err}"
            return
        self.built_in = time.perf_counter() - started

    def install(self, report: Report) -> None:
        """Serve this report from now on (its clusters described for the list)."""
        listing = Listing(describe_report(report))
        self.report, self.listing, self.error = report, listing, None

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait until no build is running (tests, benchmarks); False on time-out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._building:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True


# Job states.
RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "failed"


class Cancelled(Exception):
    """Raised from the progress callback when the user cancels: ``actions.apply`` marks the
    run interrupted (resumable or undoable), as it does on Ctrl+C."""


@dataclass
class Job:
    """One apply, resume or undo running in the server."""

    id: int
    kind: str  # apply, resume, undo
    action: str
    total: int = 0
    done: int = 0
    current: str = ""
    status: str = RUNNING
    message: str = ""
    result: ApplyResult | UndoResult | None = None
    cancellable: bool = True
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int, path: str) -> None:
        self.done, self.total, self.current = done, total, path
        if self.cancellable and self.cancel.is_set():
            raise Cancelled

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.finished else 0)

    @property
    def finished(self) -> bool:
        return self.status != RUNNING


class Jobs:
    """At most one job at a time in this server (``actions`` refuses a second process too)."""

    def __init__(self, on_finish: Callable[[], None]) -> None:
        self.current: Job | None = None
        self._lock = threading.Lock()
        self._count = 0
        self._on_finish = on_finish

    def start(
        self,
        kind: str,
        action: str,
        work: Callable[[Job], ApplyResult | UndoResult],
        *,
        total: int = 0,
        cancellable: bool = True,
    ) -> Job:
        with self._lock:
            if self.current is not None and not self.current.finished:
                raise DedupdbError(
                    f"an {self.current.kind} is running in this server", "wait for it to finish"
                )
            self._count += 1
            job = Job(self._count, kind, action, total=total, cancellable=cancellable)
            self.current = job
        threading.Thread(
            target=self._run, args=(job, work), name=f"dedupdb-{kind}", daemon=True
        ).start()
        return job

    def _run(self, job: Job, work: Callable[[Job], ApplyResult | UndoResult]) -> None:
        try:
            job.result = work(job)
            job.status = DONE
        except Cancelled:
            job.status = CANCELLED
            job.message = (
                "Cancelled: the files acted on so far stay so and are in the history, where the "
                "run can be resumed or undone."
            )
        except DedupdbError as err:
            job.status, job.message = FAILED, str(err)
        except Exception as err:  # shown in the page; the journal keeps the run resumable
            job.status, job.message = FAILED, f"{type(err).__name__}: {err}"
        finally:
            self._on_finish()

    def wait(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.current is not None and not self.current.finished:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


class State:
    """Everything the routes share: one per app."""

    def __init__(self, store: Store, options: ReportOptions | None = None) -> None:
        self.store = store
        self.reports = ReportHolder(store, options or last_options(store))
        self.choices: dict[bytes, review.Choice] = review.load_choices(store)
        # Clusters marked "not duplicates" since the report was built: shown as decided until
        # the rebuilt report leaves them apart.
        self.split: set[str] = set()
        self._split_generation = 0
        self.plans: dict[str, ActionPlan] = {}
        self.jobs = Jobs(on_finish=self.reports.rebuild)
        self.lock = threading.Lock()

    def start(self) -> None:
        self.reports.rebuild()

    def reload_choices(self) -> None:
        self.choices = review.load_choices(self.store)

    def choice(self, info: ClusterInfo) -> review.Choice | None:
        """The decision that holds for this cluster (by its key, computed once per report)."""
        choice = self.choices.get(info.raw_key)
        if choice is None or (
            choice.kind == review.KEEP and not review.resolve(info.cluster, choice)
        ):
            return None
        return choice

    def decided(self, info: ClusterInfo) -> bool:
        if (
            self.split
            and info.key in self.split
            and self._split_generation == self.reports.generation
        ):
            return True
        return self.choice(info) is not None

    def mark_split(self, key: str) -> None:
        if self._split_generation != self.reports.generation:
            self.split.clear()
            self._split_generation = self.reports.generation
        self.split.add(key)
        self.reports.rebuild()

    def is_split(self, key: str) -> bool:
        return key in self.split and self._split_generation == self.reports.generation

    def keep_plan(self, plan: ActionPlan) -> str:
        """Remember a shown plan (only the latest): the apply button names it."""
        plan_id = secrets.token_urlsafe(12)
        self.plans = {plan_id: plan}
        return plan_id

    def take_plan(self, plan_id: str) -> ActionPlan:
        plan = self.plans.pop(plan_id, None)
        if plan is None:
            raise DedupdbError(
                "that plan is no longer current (another was made, or it was applied)",
                "show the plan again, then apply it",
            )
        return plan

    def snapshot(self) -> dict[str, Any]:
        return {"building": self.reports.building, "error": self.reports.error}
