"""Act: the dry-run plan first (``plan.plan_actions``), then the apply as a job with progress
and cancel (``actions.apply``, ``actions.resume``): the CLI's functions, safety checks and
journal."""

from __future__ import annotations

import os
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import actions
from ...errors import DedupdbError
from ..pages import ENV, render
from ..state import Job, State

NAV = (("Act", "/act"),)
VERBS = {
    actions.MOVE: "Move to the quarantine folder",
    actions.TRASH: "Send to the trash",
    actions.HARDLINK: "Replace by hard links",
    actions.SYMLINK: "Replace by symbolic links",
    actions.DELETE: "Delete (cannot be undone)",
}
SCOPES = {
    "reviewed": "Clusters I decided (keepers chosen or accepted)",
    "all": "Every cluster (suggested keepers where I did not decide)",
}
SHOWN = 300  # plan lines shown in the page; the counts cover all


def _state(request: Request) -> State:
    state: State = request.app.state.review
    return state


def _default_quarantine(state: State) -> str:
    try:
        return os.fsdecode(actions.default_quarantine(state.store))
    except DedupdbError:
        return ""


def _interrupted(state: State) -> list[actions.RunInfo]:
    return [r for r in actions.history(state.store) if r.status == "interrupted" and r.planned]


async def act_page(request: Request) -> Response:
    state = _state(request)
    interrupted = await run_in_threadpool(_interrupted, state)
    return render(
        request,
        "act.html",
        verbs=VERBS,
        scopes=SCOPES,
        quarantine=_default_quarantine(state),
        job=state.jobs.current,
        interrupted=interrupted,
        decided=len(state.choices),
    )


async def make_plan(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    action = str(form.get("action", actions.MOVE))
    scope = str(form.get("scope", "reviewed"))
    folder = str(form.get("quarantine", "")).strip() or None
    report = state.reports.report
    if report is None:
        return _message(request, "the report is still being built: wait a moment", 409)
    if action not in VERBS or scope not in SCOPES:
        return _message(request, "choose an action and which clusters to act on", 400)
    if folder is not None and action in (actions.TRASH, actions.DELETE):
        folder = None  # the quarantine folder is for move and links only

    def work() -> actions.ActionPlan:
        return actions.plan_actions(
            state.store,
            report.to_dict(),
            action,
            quarantine=folder,
            source="review UI",
            reviewed_only=scope == "reviewed",
        )

    try:
        plan = await run_in_threadpool(work)
    except DedupdbError as err:
        return _message(request, str(err), 409)
    plan_id = state.keep_plan(plan)
    return render(
        request, "_plan.html", plan=plan, plan_id=plan_id, verbs=VERBS, shown=SHOWN, show=_shown
    )


def _shown(path: bytes | None) -> str:
    return os.fsdecode(path) if path else ""


def _message(request: Request, text: str, status: int) -> Response:
    return render(request, "_message.html", status_code=status, message=text, error=True)


async def apply_plan(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    plan_id = str(form.get("plan", ""))
    plan = state.plans.get(plan_id)
    if plan is not None and plan.action == actions.DELETE and form.get("confirm") != "DELETE":
        return _message(request, "to delete, type DELETE in the box: this cannot be undone", 400)
    try:
        plan = state.take_plan(plan_id)
        job = state.jobs.start(
            "apply",
            plan.action,
            lambda job: actions.apply(state.store, plan, job.progress),
            total=len(plan.actions),
        )
    except DedupdbError as err:
        return _message(request, str(err), 409)
    return render(request, "_job.html", job=job, verbs=VERBS)


async def resume(request: Request) -> Response:
    state = _state(request)
    try:
        job = state.jobs.start("resume", "", lambda job: actions.resume(state.store, job.progress))
    except DedupdbError as err:
        return _message(request, str(err), 409)
    return render(request, "_job.html", job=job, verbs=VERBS)


async def job_status(request: Request) -> Response:
    job: Job | None = _state(request).jobs.current
    if job is None:
        return Response(status_code=204)
    return render(request, "_job.html", job=job, verbs=VERBS)


async def cancel(request: Request) -> Response:
    job = _state(request).jobs.current
    if job is not None and job.cancellable and not job.finished:
        job.cancel.set()
    return render(request, "_job.html", job=job, verbs=VERBS)


def result_lines(job: Job) -> dict[str, Any]:
    """What a finished job did, for the template."""
    result = job.result
    if isinstance(result, actions.ApplyResult):
        return {"done": len(result.done), "skipped": result.skipped, "bytes": result.bytes,
                "run": result.run_id}  # fmt: skip
    if isinstance(result, actions.UndoResult):
        return {"done": len(result.restored), "skipped": result.skipped, "bytes": 0,
                "run": result.run_id}  # fmt: skip
    return {"done": 0, "skipped": [], "bytes": 0, "run": None}


ENV.globals["job_summary"] = result_lines

ROUTES = [
    Route("/act", act_page),
    Route("/act/plan", make_plan, methods=["POST"]),
    Route("/act/apply", apply_plan, methods=["POST"]),
    Route("/act/resume", resume, methods=["POST"]),
    Route("/act/job", job_status),
    Route("/act/cancel", cancel, methods=["POST"]),
]
