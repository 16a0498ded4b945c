"""End to end in a real browser: Debian's chromium (headless) drives `dedupdb serve` running
as a subprocess on a real indexed folder. Each step is checked on disk and in the database."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import browser, chromium_missing, served
from playwright.sync_api import expect
from review_corpus import make_library
from sqlalchemy import func, select

from dedupdb import index, review
from dedupdb.indexing import IndexOptions
from dedupdb.store import Store, open_store
from dedupdb.store.schema import PRESENT, QUARANTINED, ApplyRun, Image, NotDuplicate, ReviewDecision

pytestmark = pytest.mark.slow

_missing = chromium_missing()
if _missing and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the browser tests: {_missing}")
needs_chromium = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@pytest.fixture
def library(tmp_path: Path, db_path: Path) -> Iterator[Path]:
    root = make_library(tmp_path)
    store = open_store(db_path)
    index(store, root, IndexOptions(workers=1))
    store.close()
    yield root


@pytest.fixture
def url(library: Path, db_path: Path, tmp_path: Path) -> Iterator[str]:
    with served(db_path, tmp_path / "cache") as address:
        yield address


@pytest.fixture
def page(url: str) -> Iterator[Any]:
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda err: errors.append(str(err)))
        opened.on("dialog", lambda dialog: dialog.accept())  # hx-confirm's questions
        opened.set_default_timeout(20_000)
        opened.goto(url)
        yield opened
        assert errors == [], errors


def _db(db_path: Path) -> Store:
    return open_store(db_path)


def _count(db_path: Path, model: type) -> int:
    store = _db(db_path)
    try:
        with store.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        store.close()


def _statuses(db_path: Path) -> dict[str, str]:
    store = _db(db_path)
    try:
        with store.session() as session:
            return {
                str(p): str(s) for p, s in session.execute(select(Image.display_path, Image.status))
            }
    finally:
        store.close()


def _open_cluster(page: Any, search: str) -> None:
    page.goto(page.url.split("?")[0].split("/cluster")[0].rstrip("/") + "/?state=all")
    page.fill("#search", search)
    expect(page.locator(".cluster-row")).to_have_count(1)
    page.click(".cluster-row .row-title")
    page.wait_for_selector("#copies")


@needs_chromium
def test_review_decide_apply_and_undo_in_the_browser(
    page: Any, library: Path, db_path: Path
) -> None:
    page.wait_for_selector(".cluster-row")
    assert page.locator(".cluster-row").count() == 4
    page.select_option("select[name=kind]", "rotated")  # the menus filter at once
    expect(page.locator(".cluster-row")).to_have_count(1)
    assert "kind=rotated" in page.url

    # Change a keeper: select the PNG with the arrow keys, then "c" (keep only this).
    _open_cluster(page, "p0 copy")
    copies = page.locator("#copies .copy")
    target = next(i for i in range(copies.count()) if "p0-small.png" in copies.nth(i).inner_text())
    for _ in range(target - 1):  # the second copy is selected at first
        page.keyboard.press("ArrowRight")
    assert "p0-small.png" in page.locator(".copy.selected").inner_text()
    with page.expect_navigation():
        page.keyboard.press("c")
    store = _db(db_path)
    choices = list(review.load_choices(store).values())
    store.close()
    assert len(choices) == 1 and choices[0].keepers[0][1].endswith("exports/p0-small.png")

    # Not duplicates, with its key.
    _open_cluster(page, "p1-turned")
    with page.expect_navigation():
        page.keyboard.press("n")
    assert _count(db_path, NotDuplicate) > 0

    # Bulk accept for a filter: every cluster with a file in "p3".
    page.goto(page.url.split("/cluster")[0] + "/")
    page.fill("#search", "p3")
    expect(page.locator(".cluster-row")).to_have_count(1)
    with page.expect_navigation():
        page.click("#bulk-accept")
    expect(page.locator("#list")).to_contain_text("Accepted the suggested keeper of 1 clusters")
    assert _count(db_path, ReviewDecision) == 2

    # The plan first; nothing moves.
    page.click("nav >> text=Act")
    page.click("#show-plan")
    page.wait_for_selector("#plan-body")
    assert "2 clusters with your keepers" in page.inner_text("#plan-body")
    before = _statuses(db_path)
    assert set(before.values()) == {PRESENT}
    assert (library / "originals" / "p0.jpg").exists()

    # Apply to the quarantine.
    page.click("#apply")
    page.wait_for_selector("#job-done")
    quarantine = db_path.parent / "quarantine" / "photos"
    after = _statuses(db_path)
    for moved in ("originals/p0.jpg", "Downloads/p0 copy.jpg", "Downloads/p3 copy.jpg",
                  "exports/p3-small.png"):  # fmt: skip
        assert not (library / moved).exists(), moved
        assert (quarantine / moved).exists(), moved
        assert after[moved] == QUARANTINED
    for kept in ("exports/p0-small.png", "originals/p3.jpg", "originals/p1.jpg"):
        assert (library / kept).exists()
        assert after[kept] == PRESENT

    # Undo from the history page.
    page.click("nav >> text=History")
    page.click("#run-1 button.undo")
    expect(page.locator("#run-1 .state")).to_have_text("undone", timeout=20_000)
    for moved in ("originals/p0.jpg", "Downloads/p0 copy.jpg", "Downloads/p3 copy.jpg"):
        assert (library / moved).exists(), moved
    assert set(_statuses(db_path).values()) == {PRESENT}
    store = _db(db_path)
    with store.session() as session:
        assert session.scalar(select(ApplyRun.status)) == "undone"
    store.close()


@needs_chromium
def test_compare_view_keys_and_a_phone_screen(page: Any, library: Path) -> None:
    page.wait_for_selector(".cluster-row")
    _open_cluster(page, "p1-turned")
    first = page.url
    page.keyboard.press("f")
    page.wait_for_selector("#compare:not([hidden]) .pane img")
    assert page.locator("#panes .pane").count() >= 3
    page.keyboard.press("+")
    transforms = page.eval_on_selector_all("#panes img", "els => els.map(e => e.style.transform)")
    assert len(set(transforms)) == 1 and "scale(1.5)" in transforms[0]  # zoomed together
    page.keyboard.press("d")
    page.wait_for_selector("#panes canvas")
    # The difference with the rotated copy is taken with the keeper turned as the copy is:
    # nearly black (JPEG noise), where an unturned keeper differs everywhere.
    copies = page.locator("#copies .copy")
    for _ in range(copies.count()):
        if "p1-turned" in page.locator("#copies .copy.selected").inner_text():
            break
        page.keyboard.press("ArrowRight")
    mean = None
    for _ in range(100):
        mean = page.evaluate(
            """() => {
                const canvas = document.querySelector('#panes canvas');
                if (!canvas || !canvas.width) return null;
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                                  canvas.height).data;
                let sum = 0;
                for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
                return sum / (data.length / 4) / 3;
            }"""
        )
        if mean is not None:
            break
        page.wait_for_timeout(100)
    assert mean is not None and mean < 20, mean
    page.keyboard.press("t")
    page.wait_for_selector("#panes .flicker")
    page.keyboard.press("Escape")
    assert page.locator("#compare").is_hidden()
    page.keyboard.press("?")
    assert page.locator("#legend").is_visible()
    page.keyboard.press("Escape")
    page.goto(first.split("/cluster")[0] + "/")
    page.click(".cluster-row .row-title >> nth=0")
    page.wait_for_selector("#copies")
    first = page.url
    with page.expect_navigation():
        page.keyboard.press("j")
    assert page.url != first and "/cluster/" in page.url
    with page.expect_navigation():
        page.keyboard.press("k")
    assert page.url == first

    # A decision goes on to the next cluster as a fresh page: the keys then act on its copies
    # (an in-place swap once left them acting on the previous cluster's, detached, copies).
    with page.expect_navigation():
        page.keyboard.press("s")
    page.wait_for_selector("#copies")
    assert page.url != first
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#copies .copy.selected")).to_have_count(1)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert page.locator("#accept").is_visible()


def test_serve_needs_a_token_beyond_the_loopback(
    library: Path, db_path: Path, tmp_path: Path
) -> None:
    with served(db_path, tmp_path / "cache", "--host", "0.0.0.0") as address:
        token = re.search(r"\?token=([\w-]+)", address)
        assert token, address
        bare = address.split("?")[0]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bare + "history", timeout=10)
        assert refused.value.code == 403
        refused.value.close()  # its connection, now rather than whenever it is collected
        browser_like = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser_like.open(address, timeout=10) as ok:  # to /, the token now a cookie
            assert ok.status == 200 and ok.url == bare
        with browser_like.open(bare + "history", timeout=10) as ok:
            assert ok.status == 200
    with served(db_path, tmp_path / "cache") as local:
        assert "token" not in local and local.startswith("http://127.0.0.1:")
