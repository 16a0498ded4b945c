"""History: every apply run (``actions.history``) and its undo (``actions.undo``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import actions
from ...errors import DedupdbError
from ..pages import render
from ..state import State
from .act import VERBS

NAV = (("History", "/history"),)


async def history_page(request: Request) -> Response:
    state: State = request.app.state.review
    runs = await run_in_threadpool(actions.history, state.store)
    return render(request, "history.html", runs=runs, verbs=VERBS, job=state.jobs.current)


async def undo(request: Request) -> Response:
    state: State = request.app.state.review
    run_id: int = request.path_params["run_id"]
    try:
        # Not cancellable: an undo stopped mid-way would leave its run marked as undoing.
        job = state.jobs.start(
            "undo",
            "",
            lambda job: actions.undo(state.store, run_id, job.progress),
            cancellable=False,
        )
    except DedupdbError as err:
        return render(request, "_message.html", status_code=409, message=str(err), error=True)
    return render(request, "_job.html", job=job, verbs=VERBS)


ROUTES = [
    Route("/history", history_page),
    Route("/history/{run_id:int}/undo", undo, methods=["POST"]),
]
