"""The review UI in-process (Starlette's TestClient over the real app, a real SQLite database
and real photo files): pages, decisions, plan/apply/undo, pictures by id, and its security."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from review_corpus import make_library
from sqlalchemy import func, select
from starlette.routing import Route
from starlette.testclient import TestClient

from dedupdb import index, review
from dedupdb.indexing import IndexOptions
from dedupdb.store import Store
from dedupdb.store.schema import PRESENT, QUARANTINED, ApplyRun, Image, NotDuplicate, ReviewDecision
from dedupdb.web import create_app
from dedupdb.web.listing import Query, page_of

LOCAL = "http://127.0.0.1"


@pytest.fixture
def library(tmp_path: Path, store: Store) -> Path:
    root = make_library(tmp_path)
    index(store, root, IndexOptions(workers=1))
    return root


def _app(store: Store, tmp_path: Path, token: str | None = None) -> object:
    app = create_app(store, token=token, cache_dir=tmp_path / "cache")
    assert app.state.review.reports.wait(60)
    return app


@pytest.fixture
def app(store: Store, library: Path, tmp_path: Path) -> Iterator[object]:
    app = _app(store, tmp_path)
    yield app
    # The job and the report it rebuilds run in threads that hold a database connection:
    # finished before the store is closed, none is left open behind it.
    state = app.state.review  # type: ignore[attr-defined]
    assert state.jobs.wait(60) and state.reports.wait(60)


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with TestClient(app, base_url=LOCAL) as c:  # type: ignore[arg-type]
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text)
        assert csrf
        c.headers["X-CSRF-Token"] = csrf.group(1)
        yield c


def _keys(html: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r'href="/cluster/([0-9a-f]{32})', html)))


def _cluster_key(client: TestClient, needle: str) -> str:
    for key in _keys(client.get("/?state=all").text):
        if needle in client.get(f"/cluster/{key}").text:
            return key
    raise AssertionError(f"no cluster shows {needle}")


def _count(store: Store, model: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# ----------------------------------------------------------------------------- pages


def test_list_and_cluster_pages_show_the_report(client: TestClient, store: Store) -> None:
    page = client.get("/")
    assert page.status_code == 200
    keys = _keys(page.text)
    assert len(keys) == 4  # four families
    assert "clusters to review" in page.text
    cluster = client.get(f"/cluster/{keys[0]}")
    assert cluster.status_code == 200
    assert cluster.text.count('class="copy') >= 3
    for image_id in re.findall(r'data-id="(\d+)"', cluster.text):
        assert f"/image/{image_id}/thumb" in cluster.text
    rotated = client.get("/?kind=rotated")
    assert len(_keys(rotated.text)) == 1
    assert "p1" in client.get(f"/cluster/{_keys(rotated.text)[0]}").text


def test_names_are_escaped_and_control_characters_shown(client: TestClient) -> None:
    key = _cluster_key(client, "alert(1)")
    html = client.get(f"/cluster/{key}").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;script&gt;" in html
    assert "\x1b" not in html and "\\x1b[31m" in html
    assert "\\x09red.jpg" in html
    found = client.get("/?q=alert").text
    assert _keys(found) == [key] and "<script>alert" not in found
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]


def test_search_sort_and_pages(client: TestClient) -> None:
    assert len(_keys(client.get("/?q=p3+copy").text)) == 1
    assert len(_keys(client.get("/?q=nothing-like-this").text)) == 0
    for sort in ("space", "size", "date", "folder", "kind"):
        assert len(_keys(client.get(f"/?sort={sort}").text)) == 4
    assert client.get("/?sort=%3Cx%3E&page=-3&kind=zzz").status_code == 200


def test_query_and_pages_are_bounded() -> None:
    query = Query.parse({"sort": "evil", "page": "x", "state": "nope", "q": "a" * 500})
    assert (query.sort, query.page, query.state, len(query.q)) == ("space", 1, "todo", 200)
    page = page_of([], 7)
    assert (page.number, page.pages, page.total, page.first) == (1, 1, 0, 0)


# ----------------------------------------------------------------------------- decisions


def test_change_keeper_keep_several_skip_and_forget(client: TestClient, store: Store) -> None:
    key = _cluster_key(client, "p0 copy.jpg")
    html = client.get(f"/cluster/{key}").text
    ids = [int(i) for i in re.findall(r'data-id="(\d+)"', html)]
    form = {"keeper": str(ids[2]), "keep": [str(ids[2]), str(ids[1])]}
    response = client.post(f"/cluster/{key}/keep", data=form)
    assert response.status_code == 204 and response.headers["HX-Redirect"]
    choice = next(iter(review.load_choices(store).values()))
    assert choice.kind == review.KEEP and len(choice.keepers) == 2
    assert "Decided: keep 2 copies" in client.get(f"/cluster/{key}").text
    assert key not in _keys(client.get("/").text)  # decided: out of "to review"
    assert key in _keys(client.get("/?state=decided").text)

    assert client.post(f"/cluster/{key}/skip").status_code == 204
    assert next(iter(review.load_choices(store).values())).kind == review.SKIP
    assert client.post(f"/cluster/{key}/forget", data={"stay": "1"}).status_code == 204
    assert _count(store, ReviewDecision) == 0
    assert key in _keys(client.get("/").text)


def test_a_keeper_must_be_a_member(client: TestClient) -> None:
    key = _cluster_key(client, "p0 copy.jpg")
    response = client.post(f"/cluster/{key}/keep", data={"keeper": "999999"})
    assert response.status_code == 409
    assert "not a member" in response.text


def test_not_duplicates_is_remembered_and_the_cluster_goes(
    client: TestClient, app: object, store: Store
) -> None:
    key = _cluster_key(client, "p1-turned.jpg")
    assert client.post(f"/cluster/{key}/not-duplicates").status_code == 204
    assert _count(store, NotDuplicate) > 0
    assert app.state.review.reports.wait(60)  # type: ignore[attr-defined]
    assert key not in _keys(client.get("/?state=all").text)
    assert client.get(f"/cluster/{key}").status_code == 404


def test_bulk_accept_takes_only_what_the_filter_shows(client: TestClient, store: Store) -> None:
    response = client.post("/bulk/accept", data={"q": "p3"})
    assert response.status_code == 204
    assert "accepted=1" in response.headers["HX-Redirect"]
    assert _count(store, ReviewDecision) == 1
    assert client.post("/bulk/accept", data={}).status_code == 204
    assert _count(store, ReviewDecision) == 4
    assert _keys(client.get("/").text) == []


# ----------------------------------------------------------------------------- acting


def _wait_job(client: TestClient) -> str:
    for _ in range(500):
        html = client.get("/act/job").text
        status = re.search(r'data-status="(\w+)"', html)
        assert status
        if status.group(1) != "running":
            return html
        time.sleep(0.02)
    raise AssertionError("the job did not finish")


def test_plan_then_apply_then_undo(client: TestClient, store: Store, library: Path) -> None:
    client.post("/bulk/accept", data={"q": "p0"})
    plan = client.post(
        "/act/plan",
        data={"action": "move", "scope": "reviewed", "quarantine": str(library.parent / "q")},
    )
    assert plan.status_code == 200
    assert "Plan: move to the quarantine folder: 2 files" in plan.text
    plan_id = re.search(r'name="plan" value="([^"]+)"', plan.text)
    assert plan_id
    assert (library / "Downloads" / "p0 copy.jpg").exists()  # a plan changes nothing

    started = client.post("/act/apply", data={"plan": plan_id.group(1)})
    assert started.status_code == 200
    assert "Run 1: 2 files done" in _wait_job(client)
    assert not (library / "Downloads" / "p0 copy.jpg").exists()
    assert not (library / "exports" / "p0-small.png").exists()
    assert (library / "originals" / "p0.jpg").exists()
    with store.session() as session:
        statuses = set(session.scalars(select(Image.status).where(Image.display_path.like("%p0%"))))
    assert statuses == {PRESENT, QUARANTINED}
    # The same plan cannot be applied twice.
    assert client.post("/act/apply", data={"plan": plan_id.group(1)}).status_code == 409

    history = client.get("/history").text
    assert "run-1" in history and "Undo" in history
    assert client.post("/history/1/undo").status_code == 200
    assert "files restored" in _wait_job(client)
    assert (library / "Downloads" / "p0 copy.jpg").exists()
    assert (library / "exports" / "p0-small.png").exists()
    with store.session() as session:
        assert session.scalar(select(ApplyRun.status)) == "undone"


def test_delete_needs_the_second_confirmation(client: TestClient, library: Path) -> None:
    client.post("/bulk/accept", data={"q": "p0"})
    plan = client.post("/act/plan", data={"action": "delete", "scope": "reviewed"})
    plan_id = re.search(r'name="plan" value="([^"]+)"', plan.text)
    assert plan_id and "Type DELETE to confirm" in plan.text
    refused = client.post("/act/apply", data={"plan": plan_id.group(1), "confirm": "yes"})
    assert refused.status_code == 400
    assert (library / "Downloads" / "p0 copy.jpg").exists()


def test_apply_needs_a_plan_shown_first(client: TestClient, library: Path) -> None:
    response = client.post("/act/apply", data={"plan": "made-up"})
    assert response.status_code == 409
    assert "show the plan again" in response.text


# ----------------------------------------------------------------------------- pictures


def _ids(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {str(p): int(i) for p, i in session.execute(select(Image.display_path, Image.id))}


def test_pictures_are_served_by_id_only(client: TestClient, store: Store, library: Path) -> None:
    ids = _ids(store)
    original = ids["originals/p0.jpg"]
    full = client.get(f"/image/{original}/full")
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert full.content == (library / "originals" / "p0.jpg").read_bytes()
    thumb = client.get(f"/image/{original}/thumb?w=300")
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    assert client.get(f"/image/{original}/thumb?w=300").content == thumb.content  # cached
    assert client.get("/image/99999/full").status_code == 404
    for attempt in ("/image/../../etc/passwd/full", "/image/%2e%2e%2fetc/full",
                    "/image/-1/full", "/image/p0.jpg/full"):  # fmt: skip
        assert client.get(attempt).status_code == 404


def test_a_changed_or_replaced_file_is_not_served(
    client: TestClient, store: Store, library: Path, tmp_path: Path
) -> None:
    ids = _ids(store)
    changed = library / "exports" / "p0-small.png"
    changed.write_bytes(changed.read_bytes() + b"x")
    assert client.get(f"/image/{ids['exports/p0-small.png']}/full").status_code == 404
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    target = library / "originals" / "p1.jpg"
    target.unlink()
    target.symlink_to(secret)
    assert client.get(f"/image/{ids['originals/p1.jpg']}/full").status_code == 404


# ----------------------------------------------------------------------------- security


def _post_routes(app: object) -> list[str]:
    paths = []
    for route in app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and "POST" in (route.methods or ()):
            paths.append(route.path.replace("{key:str}", "0" * 32).replace("{run_id:int}", "1"))
    return paths


def test_every_state_changing_route_needs_the_csrf_token(app: object, store: Store) -> None:
    paths = _post_routes(app)
    assert len(paths) >= 12
    with TestClient(app, base_url=LOCAL) as c:  # type: ignore[arg-type]
        for path in paths:
            assert c.post(path).status_code == 403, path
            assert c.post(path, headers={"X-CSRF-Token": "wrong"}).status_code == 403, path
    assert _count(store, ReviewDecision) == 0


def test_a_cross_origin_post_is_refused(client: TestClient) -> None:
    response = client.post("/bulk/accept", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403


def test_loopback_server_refuses_other_host_names(app: object) -> None:
    with TestClient(app, base_url="http://evil.example") as c:  # type: ignore[arg-type]
        assert c.get("/").status_code == 403
    with TestClient(app, base_url="http://localhost:8765") as c:  # type: ignore[arg-type]
        assert c.get("/").status_code == 200


def test_token_is_required_and_moved_to_a_cookie(
    store: Store, library: Path, tmp_path: Path
) -> None:
    token = "a-long-enough-token-for-tests"
    app = _app(store, tmp_path, token=token)
    with TestClient(app, base_url="http://192.0.2.10:8765") as c:  # type: ignore[arg-type]
        assert c.get("/").status_code == 403
        assert c.get("/image/1/full").status_code == 403
        assert c.get("/?token=wrong").status_code == 403
        entry = c.get(f"/?token={token}", follow_redirects=False)
        assert entry.status_code == 303 and entry.headers["location"] == "/"
        assert "httponly" in entry.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200  # the cookie now
    with TestClient(app, base_url="http://192.0.2.10:8765") as other:  # type: ignore[arg-type]
        assert other.get("/history").status_code == 403


def test_cancel_interrupts_the_run_which_then_resumes(
    client: TestClient, app: object, store: Store, library: Path, tmp_path: Path
) -> None:
    """Cancel is the progress callback raising (as Ctrl+C does in the CLI): the run is
    interrupted, the act page offers to resume it, and resuming finishes it."""
    from dedupdb import actions
    from dedupdb.web.state import Cancelled, Job

    client.post("/bulk/accept", data={})
    state = app.state.review  # type: ignore[attr-defined]
    plan = actions.plan_actions(
        state.store,
        state.reports.report.to_dict(),
        quarantine=tmp_path / "q",
        reviewed_only=True,
    )
    assert len(plan.actions) >= 4
    job = Job(1, "apply", "move", total=len(plan.actions))
    job.cancel.set()  # the user pressed Cancel while the first file was being moved
    with pytest.raises(Cancelled):
        actions.apply(state.store, plan, job.progress)
    with store.session() as session:
        assert session.scalar(select(ApplyRun.status)) == "interrupted"
    page = client.get("/act").text
    assert "was interrupted" in page and 'id="resume"' in page
    # A new apply is refused until the interrupted run is settled.
    plan_html = client.post(
        "/act/plan",
        data={"action": "move", "scope": "all", "quarantine": str(library.parent / "q")},
    ).text
    plan_id = re.search(r'name="plan" value="([^"]+)"', plan_html)
    assert plan_id
    client.post("/act/apply", data={"plan": plan_id.group(1)})
    assert "was interrupted before it finished" in _wait_job(client)

    assert client.post("/act/resume").status_code == 200
    assert "done" in _wait_job(client)
    with store.session() as session:
        assert session.scalar(select(ApplyRun.status).where(ApplyRun.id == 1)) == "done"
        moved = session.scalar(
            select(func.count()).select_from(Image).where(Image.status == QUARANTINED)
        )
    assert moved == len(plan.actions)


def test_cancel_button_stops_a_running_apply(
    client: TestClient, app: object, store: Store, tmp_path: Path
) -> None:
    """Through the routes: a job whose progress is slowed is cancelled by POST /act/cancel."""
    import threading

    from dedupdb import actions

    client.post("/bulk/accept", data={})
    state = app.state.review  # type: ignore[attr-defined]
    plan = actions.plan_actions(
        state.store,
        state.reports.report.to_dict(),
        quarantine=tmp_path / "q",
        reviewed_only=True,
    )
    gate = threading.Event()

    def slow(job: object) -> actions.ApplyResult:
        def progress(done: int, total: int, path: str) -> None:
            gate.wait(10)  # hold after the first file until the test has pressed Cancel
            job.progress(done, total, path)  # type: ignore[attr-defined]

        return actions.apply(state.store, plan, progress)

    state.jobs.start("apply", "move", slow, total=len(plan.actions))
    assert 'id="cancel"' in client.get("/act/job").text
    client.post("/act/cancel")
    gate.set()
    html = _wait_job(client)
    assert 'data-status="cancelled"' in html and "resumed or undone" in html
    with store.session() as session:
        assert session.scalar(select(ApplyRun.status)) == "interrupted"


def test_a_token_is_made_up_beyond_the_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from dedupdb.errors import DedupdbError
    from dedupdb.web.server import Address, choose_token

    monkeypatch.delenv("DEDUPDB_TOKEN", raising=False)
    assert choose_token("127.0.0.1", None) is None
    assert choose_token("::1", "") is None
    made = choose_token("0.0.0.0", "")
    assert made is not None and len(made) >= 16
    assert choose_token("0.0.0.0", "") != made
    with pytest.raises(DedupdbError, match="too short"):
        choose_token("127.0.0.1", "short")
    monkeypatch.setenv("DEDUPDB_TOKEN", "from-the-environment-1234")
    assert choose_token("192.0.2.1", None) == "from-the-environment-1234"
    assert Address("0.0.0.0", 8765, made).url == f"http://127.0.0.1:8765/?token={made}"


def test_dedupdb_apply_acts_on_the_report_reviewed_here(
    client: TestClient, store: Store, library: Path, tmp_path: Path
) -> None:
    """The UI records its report as `dedupdb report` does: `dedupdb apply` then acts on it,
    with the keeper chosen in the browser."""
    from click.testing import CliRunner

    from dedupdb.cli import cli

    key = _cluster_key(client, "p0 copy.jpg")
    html = client.get(f"/cluster/{key}").text
    ids = dict(
        zip(
            re.findall(r'class="path"><a href="/image/(\d+)/full"', html),
            re.findall(r'class="path"><a [^>]*>([^<]*)</a>', html),
            strict=True,
        )
    )
    chosen = next(i for i, path in ids.items() if path.endswith("p0-small.png"))
    assert client.post(f"/cluster/{key}/keep", data={"keeper": chosen}).status_code == 204
    quarantine = str(tmp_path / "quarantine")
    result = CliRunner().invoke(cli, ["apply", "--db", store.url, "--move-to", quarantine, "--yes"])
    assert result.exit_code == 0, result.output
    assert (library / "exports" / "p0-small.png").exists()
    assert not (library / "originals" / "p0.jpg").exists()


def test_the_ui_keeps_the_settings_of_the_last_report(
    store: Store, library: Path, tmp_path: Path
) -> None:
    """After `dedupdb report --prefer ...` the UI shows (and records again) that report, not
    one with the default settings."""
    from click.testing import CliRunner

    from dedupdb.cli import cli

    made = CliRunner().invoke(cli, ["report", "--db", store.url, "--prefer", "*/exports/*", "-q"])
    assert made.exit_code == 0, made.output
    app = _app(store, tmp_path)
    report = app.state.review.reports.report  # type: ignore[attr-defined]
    assert report.settings["prefer"] == ["*/exports/*"]
    keepers = [next(m for m in c.members if m.keeper).path for c in report.clusters]
    assert keepers and all("/exports/" in path for path in keepers)
