"""The dashboard in a real browser: Debian's chromium (headless) watches `dedupdb serve`
(a subprocess) show a real index run (another subprocess) live, then finished, without
reloading the page."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from browser import browser, chromium_missing, served
from playwright.sync_api import expect
from test_progress import (
    WATCHED_PHOTOS,
    many_photos,  # noqa: F401 (a fixture)
    processes,  # noqa: F401 (a fixture)
    start_index,
    wait_for_progress,
)

pytestmark = pytest.mark.slow

_missing = chromium_missing()
if _missing and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the browser tests: {_missing}")
needs_chromium = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@needs_chromium
def test_the_dashboard_follows_a_real_index_to_its_end(
    tmp_path: Path,
    many_photos: Path,  # noqa: F811
    processes: list[Any],  # noqa: F811
) -> None:
    db = tmp_path / "watched.sqlite"
    run = start_index(many_photos, str(db))
    processes.append(run)
    wait_for_progress(str(db), run)
    # Held still (a real stop of the process) until the page has shown it running, so that
    # the test does not depend on how fast this machine indexes.
    os.kill(run.pid, signal.SIGSTOP)
    stopped = True
    try:
        with served(db, tmp_path / "cache") as url, browser() as chromium:
            page = chromium.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.set_default_timeout(20_000)
            page.goto(url.split("?")[0] + "dashboard")
            live = page.locator(".run-live[data-state=running]")
            expect(live).to_have_count(1)
            figures = live.locator(".figures").inner_text()
            done = re.search(r"([\d,]+) of ([\d,]+) files \((\d+) %\)", figures)
            assert done, figures
            assert 0 < int(done.group(1).replace(",", "")) < WATCHED_PHOTOS + 1
            assert done.group(2) == f"{WATCHED_PHOTOS + 1:,}" and "files/s" in figures
            assert 0 <= int(live.locator("progress").get_attribute("value") or "-1") < 1000
            expect(live.locator(".workers tbody tr")).to_have_count(1)
            expect(page.locator("#history-run-1")).to_have_attribute("data-state", "running")

            os.kill(run.pid, signal.SIGCONT)
            stopped = False
            # The same page, polled: the run ends, and the broken file's error shows.
            ending = page.locator("#no-run .state")
            expect(ending).to_have_text("finished", timeout=180_000)
            assert run.wait(timeout=60) == 0
            expect(page.locator("#live .run-errors li")).to_contain_text("broken.jpg")
            no_run = page.locator("#no-run").inner_text()
            assert f"{WATCHED_PHOTOS} new" in no_run and "1 failed" in no_run, no_run
            # The history and totals follow within their (slower) poll.
            expect(page.locator("#history-run-1")).to_have_attribute(
                "data-state", "finished", timeout=30_000
            )
            expect(page.locator("#total-images")).to_have_text(
                f"{WATCHED_PHOTOS:,}", timeout=30_000
            )
            assert errors == [], errors
    finally:
        if stopped:
            os.kill(run.pid, signal.SIGCONT)
