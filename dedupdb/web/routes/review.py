"""Review: the cluster list (filter, sort, pages), one cluster's copies, and the decisions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import decisions, review
from ...errors import DedupdbError
from ...keeper_rules import WEIGHTS
from ...render.parts import Outline, has_parts, in_file_frame, member_words, outlines
from ...report import ReportCluster
from ..listing import KINDS, SORTS, ClusterInfo, Query, page_of
from ..pages import render
from ..state import State

NAV = (("Review", "/"),)


def _state(request: Request) -> State:
    state: State = request.app.state.review
    return state


def _query(request: Request) -> Query:
    return Query.parse(dict(request.query_params))


def _url(path: str, params: dict[str, str]) -> str:
    return path + ("?" + urlencode(params) if params else "")


def _not_ready(request: Request) -> Response | None:
    state = _state(request)
    if state.reports.listing is None:
        return render(request, "building.html", status_code=503 if state.reports.error else 200)
    return None


async def cluster_list(request: Request) -> Response:
    waiting = _not_ready(request)
    if waiting is not None:
        return waiting
    state = _state(request)
    query = _query(request)
    listing = state.reports.listing
    assert listing is not None
    selected = await run_in_threadpool(listing.select, query, state.decided)
    page = page_of(selected, query.page)
    template = "_list.html" if request.headers.get("hx-target") == "list" else "list.html"
    return render(
        request,
        template,
        query=query,
        page=page,
        kinds=KINDS,
        sorts=SORTS,
        url=_url,
        choice=state.choice,
        is_split=state.is_split,
        report=state.reports.report,
        decided_count=len(state.choices),
    )


def _neighbours(state: State, query: Query, key: str) -> tuple[str | None, str | None, int, int]:
    """(previous key, next key, position from 1, count) of a cluster in the query's list."""
    listing = state.reports.listing
    assert listing is not None
    selected = listing.select(query, state.decided)
    keys = [i.key for i in selected]
    if key not in keys:
        # Decided just now (and so out of a "to review" list): its neighbours where it was.
        everything = listing.select(Query(query.sort, query.kind, "all", query.q), lambda _: False)
        order = [i.key for i in everything]
        if key not in order:
            return None, (keys[0] if keys else None), 0, len(keys)
        at = order.index(key)
        later = set(order[at + 1 :])
        following = next((k for k in keys if k in later), None)
        earlier = [k for k in keys if k not in later]
        return (earlier[-1] if earlier else None), following, 0, len(keys)
    at = keys.index(key)
    previous = keys[at - 1] if at > 0 else None
    following = keys[at + 1] if at + 1 < len(keys) else None
    return previous, following, at + 1, len(keys)


def _info(request: Request) -> ClusterInfo:
    listing = _state(request).reports.listing
    key = request.path_params["key"]
    info = listing.by_key.get(key) if listing else None
    if info is None:
        raise _Gone
    return info


class _Gone(Exception):
    """The cluster is not in the current report (decided apart, acted on, or changed)."""


async def cluster_page(request: Request) -> Response:
    waiting = _not_ready(request)
    if waiting is not None:
        return waiting
    state = _state(request)
    query = _query(request)
    try:
        info = _info(request)
    except _Gone:
        return render(request, "gone.html", status_code=404, query=query, url=_url)
    previous, following, position, count = await run_in_threadpool(
        _neighbours, state, query, info.key
    )
    # Placing an outline may read a file (one with borders): in a thread, and only for the
    # clusters that have part-copies.
    drawn = await run_in_threadpool(_outlines, info.cluster) if has_parts(info.cluster) else {}
    choice = state.choice(info)
    resolved = review.resolve(info.cluster, choice)
    kept = set(resolved[1]) if resolved else {info.cluster.keeper}
    keeper = resolved[0] if resolved else info.cluster.keeper
    return render(
        request,
        "cluster.html",
        info=info,
        cluster=info.cluster,
        query=query,
        url=_url,
        previous=previous,
        following=following,
        position=position,
        count=count,
        choice=choice,
        split=state.is_split(info.key),
        kept=kept,
        keeper=keeper,
        weights=WEIGHTS,
        parts=member_words(info.cluster),
        outlines=drawn,
    )


def _outlines(cluster: ReportCluster) -> dict[int, list[Outline]]:
    """The parts to outline over each member's picture, in fractions of its file's frame
    (``render.parts``; a file with added borders is read once to place them)."""
    by_id = {m.image_id: m for m in cluster.members}
    return {
        image_id: [
            Outline(o.part, in_file_frame(by_id[image_id], o.region), o.label) for o in drawn
        ]
        for image_id, drawn in outlines(cluster).items()
    }


async def _decide(request: Request, work: Any) -> Response:
    """Run a decision, then go on to the next cluster of the list (or back to the list)."""
    state = _state(request)
    query = _query(request)
    try:
        info = _info(request)
    except _Gone:
        return render(request, "gone.html", status_code=404, query=query, url=_url)
    form = await request.form()
    try:
        await run_in_threadpool(work, state, info, form)
    except DedupdbError as err:
        return render(request, "_message.html", status_code=409, message=str(err), error=True)
    _, following, _, _ = await run_in_threadpool(_neighbours, state, query, info.key)
    stay = form.get("stay") == "1"
    if stay or following is None:
        target = _url(f"/cluster/{info.key}", query.params()) if stay else _url("/", query.params())
    else:
        target = _url(f"/cluster/{following}", query.params())
    return Response(status_code=204, headers={"HX-Redirect": target})


def _keep(state: State, info: ClusterInfo, form: Any) -> None:
    ids = [int(v) for v in form.getlist("keep") if str(v).isdigit()]
    keeper = form.get("keeper")
    if keeper is not None and str(keeper).isdigit():
        ids = [int(str(keeper)), *[i for i in ids if i != int(str(keeper))]]
    state.choices[review.key_of(info.cluster)] = review.choose_keepers(
        state.store, info.cluster, ids
    )


def _accept(state: State, info: ClusterInfo, form: Any) -> None:
    state.choices[review.key_of(info.cluster)] = review.choose_keepers(
        state.store, info.cluster, [info.cluster.keeper]
    )


def _skip(state: State, info: ClusterInfo, form: Any) -> None:
    state.choices[review.key_of(info.cluster)] = review.skip(state.store, info.cluster)


def _not_duplicates(state: State, info: ClusterInfo, form: Any) -> None:
    decisions.mark_not_duplicates(state.store, [m.image_id for m in info.cluster.members])
    state.mark_split(info.key)


def _forget(state: State, info: ClusterInfo, form: Any) -> None:
    review.forget(state.store, info.cluster)
    state.choices.pop(review.key_of(info.cluster), None)
    if state.is_split(info.key):
        decisions.forget_not_duplicates(state.store, [m.image_id for m in info.cluster.members])
        state.split.discard(info.key)
        state.reports.rebuild()


async def keep(request: Request) -> Response:
    return await _decide(request, _keep)


async def accept(request: Request) -> Response:
    return await _decide(request, _accept)


async def skip(request: Request) -> Response:
    return await _decide(request, _skip)


async def not_duplicates(request: Request) -> Response:
    return await _decide(request, _not_duplicates)


async def forget(request: Request) -> Response:
    return await _decide(request, _forget)


async def bulk_accept(request: Request) -> Response:
    """Accept the suggested keeper of every undecided cluster the filter keeps."""
    waiting = _not_ready(request)
    if waiting is not None:
        return waiting
    state = _state(request)
    form = await request.form()
    query = Query.parse({k: str(v) for k, v in form.items()})
    query = Query(query.sort, query.kind, "todo", query.q)
    listing = state.reports.listing
    assert listing is not None

    def work() -> int:
        chosen = [i.cluster for i in listing.select(query, state.decided)]
        count = review.accept_suggested(state.store, chosen)
        state.reload_choices()
        return count

    count = await run_in_threadpool(work)
    target = _url("/", {**query.params(), "accepted": f"{count:,}"})
    return Response(status_code=204, headers={"HX-Redirect": target})


async def refresh(request: Request) -> Response:
    """Build the report again (after an index run outside the UI, say)."""
    _state(request).reports.rebuild()
    return Response(status_code=204, headers={"HX-Refresh": "true"})


async def build_status(request: Request) -> Response:
    return render(request, "_building.html")


ROUTES = [
    Route("/", cluster_list),
    Route("/cluster/{key:str}", cluster_page),
    Route("/cluster/{key:str}/keep", keep, methods=["POST"]),
    Route("/cluster/{key:str}/accept", accept, methods=["POST"]),
    Route("/cluster/{key:str}/skip", skip, methods=["POST"]),
    Route("/cluster/{key:str}/not-duplicates", not_duplicates, methods=["POST"]),
    Route("/cluster/{key:str}/forget", forget, methods=["POST"]),
    Route("/bulk/accept", bulk_accept, methods=["POST"]),
    Route("/refresh", refresh, methods=["POST"]),
    Route("/building", build_status),
]
