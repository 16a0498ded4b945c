"""Dashboard: the runs going on now (live, polled by the page), the history of runs, the
library's totals and its reclaimable bytes over time; and ``/metrics`` for Prometheus.

Everything is read from what runs record as they go (``progress``): a run started by cron, a
container or another person shows here as well as one started from this server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import metrics, progress
from ...keeper_rules import human_bytes
from ...progress import LibraryTotals, RunProgress, TotalsPoint, format_duration
from ..pages import ENV, render
from ..state import State

NAV = (("Dashboard", "/dashboard"),)
HISTORY = 30  # runs listed
SHOWN_ERRORS = 20  # latest errors shown for a live run (the row keeps a few more)
CHART_POINTS = 200  # reports drawn in the chart, the latest
CHART_WIDTH, CHART_HEIGHT = 600, 140


def duration(seconds: float | None) -> str:
    """``42 s``, ``3m05s``, ``2h10m`` (as ``status --watch`` says it)."""
    return "—" if seconds is None else format_duration(seconds)


@dataclass(frozen=True)
class Chart:
    """Reclaimable bytes over time as an SVG polyline (drawn on the server: no chart library
    and no script). ``points`` is the polyline's ``x,y`` list in a CHART_WIDTH by
    CHART_HEIGHT box, y growing downwards."""

    points: str
    dots: tuple[tuple[float, float, str], ...]  # x, y, its tooltip
    top: int
    first: datetime
    last: datetime


def chart(history: list[TotalsPoint]) -> Chart | None:
    """The chart of these reports' reclaimable bytes; None with fewer than two."""
    history = history[-CHART_POINTS:]
    if len(history) < 2:
        return None
    start = history[0].made_at.timestamp()
    span = history[-1].made_at.timestamp() - start
    top = max(1, max(p.reclaimable_bytes for p in history))
    dots = []
    for number, point in enumerate(history):
        # By time; evenly when the clock did not move (reports made within its resolution).
        at = (point.made_at.timestamp() - start) / span if span > 0 else number / (len(history) - 1)
        x = round(at * CHART_WIDTH, 1)
        y = round(CHART_HEIGHT - point.reclaimable_bytes / top * CHART_HEIGHT, 1)
        tip = f"{point.made_at:%Y-%m-%d %H:%M} UTC: {human_bytes(point.reclaimable_bytes)} in "
        tip += f"{point.duplicates:,} duplicates"
        dots.append((x, y, tip))
    points = " ".join(f"{x},{y}" for x, y, _ in dots)
    return Chart(points, tuple(dots), top, history[0].made_at, history[-1].made_at)


def _live(state: State) -> tuple[list[RunProgress], RunProgress | None]:
    """The runs going on, or else the latest run (to say how it ended)."""
    running = progress.live_runs(state.store)
    return running, None if running else progress.latest_run(state.store)


def _summary(state: State) -> tuple[list[RunProgress], LibraryTotals, Chart | None]:
    history = progress.run_history(state.store, limit=HISTORY)
    totals = progress.library_totals(state.store)
    return history, totals, chart(progress.totals_history(state.store, limit=CHART_POINTS))


async def dashboard_page(request: Request) -> Response:
    state: State = request.app.state.review
    running, last = await run_in_threadpool(_live, state)
    history, totals, drawn = await run_in_threadpool(_summary, state)
    return render(
        request,
        "dashboard.html",
        running=running,
        last=last,
        history=history,
        totals=totals,
        chart=drawn,
        shown_errors=SHOWN_ERRORS,
        chart_size=(CHART_WIDTH, CHART_HEIGHT),
    )


async def live_fragment(request: Request) -> Response:
    """The runs going on, polled every second by the dashboard."""
    state: State = request.app.state.review
    running, last = await run_in_threadpool(_live, state)
    return render(request, "_live.html", running=running, last=last, shown_errors=SHOWN_ERRORS)


async def summary_fragment(request: Request) -> Response:
    """The history and the totals, polled less often (they count the whole library)."""
    state: State = request.app.state.review
    history, totals, drawn = await run_in_threadpool(_summary, state)
    return render(
        request,
        "_summary.html",
        history=history,
        totals=totals,
        chart=drawn,
        chart_size=(CHART_WIDTH, CHART_HEIGHT),
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus' scrape: ``metrics.metrics_text`` (the guard's token rule applies; a
    scraper sends the token as ``Authorization: Bearer``)."""
    state: State = request.app.state.review
    text = await run_in_threadpool(metrics.metrics_text, state.store)
    return Response(text, media_type=metrics.CONTENT_TYPE)


ENV.filters["duration"] = duration

ROUTES = [
    Route("/dashboard", dashboard_page),
    Route("/dashboard/live", live_fragment),
    Route("/dashboard/summary", summary_fragment),
    Route("/metrics", metrics_endpoint),
]
