"""The review UI's dashboard and ``/metrics``, in-process (Starlette's TestClient over the
real app and a real database): runs made by real index runs (one in a subprocess, held still
with SIGSTOP, then killed with kill -9), the library's totals, and who may scrape."""

from __future__ import annotations

import os
import re
import shutil
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_progress import (
    WATCHED_PHOTOS,
    many_photos,  # noqa: F401 (a fixture)
    parse,
    processes,  # noqa: F401 (a fixture)
    set_row,
    start_index,
    wait_for_progress,
)

from dedupdb.indexing import IndexOptions, index
from dedupdb.metrics import CONTENT_TYPE
from dedupdb.progress import TotalsPoint
from dedupdb.report import build_report
from dedupdb.store import Store, open_store
from dedupdb.tracking import INDEX, Recorder, _now
from dedupdb.web import create_app
from dedupdb.web.routes.dashboard import CHART_HEIGHT, CHART_WIDTH, chart, duration

LOCAL = "http://127.0.0.1"
SEQUENTIAL = IndexOptions(workers=1)
BAD_NAME = "bad\x1b[31mname.jpg"


def _client(store: Store, tmp_path: Path, token: str | None = None, **kwargs: Any) -> TestClient:
    app = create_app(store, token=token, cache_dir=tmp_path / "cache", build=False)
    return TestClient(app, **kwargs)  # type: ignore[arg-type]


def _text(html: str) -> str:
    """The page's words, without its tags and with its spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_dashboard_shows_runs_totals_and_the_chart(
    store: Store, photo_tree: Path, tmp_path: Path
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    build_report(store)
    shutil.copy2(photo_tree / "cat.jpg", photo_tree / "cat copy.jpg")
    (photo_tree / BAD_NAME).write_bytes(b"\xff\xd8\xff not really a JPEG")
    index(store, photo_tree, SEQUENTIAL)
    report = build_report(store)

    with _client(store, tmp_path, base_url=LOCAL) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert '<a href="/dashboard" aria-current="page">Dashboard</a>' in page.text
        assert 'hx-get="/dashboard/live" hx-trigger="every 1s"' in page.text
        words = _text(page.text)
        # The history, newest first, with each run's figures and ending.
        rows = re.findall(r'<tr id="history-run-(\d+)" data-state="(\w+)">', page.text)
        assert rows == [("2", "finished"), ("1", "finished")]
        assert "6 of 6: 6 new, 0 changed, 0 moved, 0 unchanged, 0 skipped, 0 failed" in words
        assert "2 of 2: 1 new, 0 changed, 0 moved, 6 unchanged, 0 skipped, 1 failed" in words
        # The totals: now, and from the last report.
        assert re.search(r'id="total-images">7<', page.text)
        assert re.search(r'id="total-failed" class="error">1<', page.text)
        copy_size = (photo_tree / "cat.jpg").stat().st_size
        exact = re.search(r'id="total-exact">1 \(([^)]+)\)<', page.text)
        assert exact, page.text
        assert report.summary.duplicates >= 1
        assert f"{report.summary.duplicates} in {len(report.clusters)} clusters" in words
        # The reclaimable bytes of the two reports, as a line.
        points = re.search(r'<polyline class="line" points="([^"]+)"', page.text)
        assert points, page.text
        xy = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
        assert xy[0] == (0.0, CHART_HEIGHT) and xy[-1] == (CHART_WIDTH, 0.0)
        # The last run's failure, its name's escape shown, not sent to the browser.
        live = client.get("/dashboard/live")
        assert live.status_code == 200
        assert "The last: index of" in _text(live.text) and "finished" in live.text
        assert "bad\\x1b[31mname.jpg" in live.text and "\x1b" not in live.text
        assert "\x1b" not in page.text
        summary = client.get("/dashboard/summary")
        assert 'id="run-history"' in summary.text and "<html" not in summary.text
    assert copy_size > 0


def test_the_chart_scales_the_reports_figures() -> None:
    from datetime import datetime, timedelta

    start = datetime(2026, 1, 1)
    points = [
        TotalsPoint(start + timedelta(days=d), 10, 1, 1, size)
        for d, size in ((0, 400), (1, 1000), (3, 0))
    ]
    drawn = chart(points)
    assert drawn is not None and drawn.top == 1000
    assert drawn.points == f"0.0,{CHART_HEIGHT * 0.6} {CHART_WIDTH / 3:.1f},0.0 600.0,140.0"
    assert chart(points[:1]) is None
    assert [duration(s) for s in (None, 4.4, 185, 7800)] == ["—", "4 s", "3m05s", "2h10m"]


def test_a_run_that_stops_moving_shows_stuck(
    store: Store, photo_tree: Path, tmp_path: Path
) -> None:
    recorder = Recorder.start(store, INDEX, str(photo_tree / "share\x07"))
    try:
        set_row(store, recorder.id, progressed_at=_now() - timedelta(seconds=1000))
        with _client(store, tmp_path, base_url=LOCAL) as client:
            live = client.get("/dashboard/live").text
            assert f'id="live-run-{recorder.id}" data-state="stuck"' in live
            assert "Stuck: no progress for 16m40s" in live
            assert "share\\x07" in live and "\x07" not in live
            assert (
                f'<tr id="history-run-{recorder.id}" data-state="running">'
                in client.get("/dashboard/summary").text
            )
    finally:
        recorder.finish("finished")


def test_an_empty_database_says_so(store: Store, tmp_path: Path) -> None:
    with _client(store, tmp_path, base_url=LOCAL) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert "No run has been recorded yet" in page.text and "No run recorded yet." in page.text


@pytest.mark.slow
def test_a_live_index_then_its_kill_9_shows_interrupted(
    tmp_path: Path,
    many_photos: Path,  # noqa: F811
    processes: list[Any],  # noqa: F811
) -> None:
    db = str(tmp_path / "live.sqlite")
    run = start_index(many_photos, db)
    processes.append(run)
    wait_for_progress(db, run)
    os.kill(run.pid, signal.SIGSTOP)  # held still while the page is read: running, moving not
    store = open_store(db)
    try:
        with _client(store, tmp_path, base_url=LOCAL) as client:
            live = client.get("/dashboard/live").text
            assert '<article class="run-live" id="live-run-1" data-state="running">' in live
            words = _text(live)
            done = re.search(r"([\d,]+) of ([\d,]+) files \( ?(\d+) % ?\)", words)
            assert done, words
            assert 0 < int(done.group(1).replace(",", "")) < WATCHED_PHOTOS + 1
            assert done.group(2) == f"{WATCHED_PHOTOS + 1:,}"
            assert f"Process {run.pid} on" in words and "files/s" in words
            assert re.search(r"<tr><td>\d+</td><td class=\"path\">", live)  # a worker's line
            value = re.search(r'<progress max="1000" value="(\d+)">', live)
            assert value and 0 <= int(value.group(1)) < 1000

            os.kill(run.pid, signal.SIGKILL)
            assert run.wait(timeout=30) == -signal.SIGKILL
            live = client.get("/dashboard/live").text
            assert 'data-state="interrupted">interrupted</strong>' in live
            assert "run it again to continue" in live
            page = client.get("/dashboard").text
            assert '<tr id="history-run-1" data-state="interrupted">' in page
    finally:
        store.close()


# ----------------------------------------------------------------------------- /metrics


def test_metrics_are_served_for_prometheus(store: Store, photo_tree: Path, tmp_path: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    with _client(store, tmp_path, base_url=LOCAL) as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE
        samples = parse(response.text)
        assert samples[("dedupdb_images", (("status", "present"),))] == 6
        key = ("dedupdb_last_run_state", (("kind", "index"), ("state", "finished")))
        assert samples[key] == 1
    with _client(store, tmp_path, base_url="http://evil.example") as client:
        assert client.get("/metrics").status_code == 403  # loopback only, as every page


def test_metrics_beyond_the_loopback_need_the_token(store: Store, tmp_path: Path) -> None:
    token = "a-long-enough-token-for-tests"
    with _client(store, tmp_path, token, base_url="http://192.0.2.10:8765") as client:
        assert client.get("/metrics").status_code == 403
        wrong = {"Authorization": "Bearer not-the-token-at-all"}
        assert client.get("/metrics", headers=wrong).status_code == 403
        assert client.get("/metrics", headers={"Authorization": token}).status_code == 403
        assert client.get("/dashboard").status_code == 403
        bearer = {"Authorization": f"Bearer {token}"}
        scraped = client.get("/metrics", headers=bearer)
        assert scraped.status_code == 200 and "dedupdb_images" in scraped.text
        assert "set-cookie" not in scraped.headers  # a scraper keeps no cookie
        assert client.get("/dashboard/live", headers=bearer).status_code == 200
        # A POST with the bearer token still needs the page's CSRF token.
        assert client.post("/refresh", headers=bearer).status_code == 403
