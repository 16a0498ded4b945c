"""Part-copies shown to the reviewer: a cropped copy, a tilted copy or a picture inside a
screenshot says so in words, and the part is outlined over the whole's thumbnail, in the HTML
report, the CSV report and `dedupdb serve` (render/parts.py). The reports are made by the CLI
from real files (`index --features`, `report --deep`); the pages are drawn by chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import browser, chromium_missing, served
from click.testing import CliRunner
from PIL import Image
from playwright.sync_api import expect
from skimage import data

from dedupdb.cli import cli
from dedupdb.keeper import ORIGINAL_COLOURS, UNCROPPED
from dedupdb.render.csv_report import CSV_COLUMNS, to_csv
from dedupdb.render.html import render_html
from dedupdb.render.parts import (
    SCREENSHOT,
    PartPair,
    describe,
    in_file_frame,
    member_words,
    outlines,
    where,
)
from dedupdb.report import Member, Report, ReportCluster, ReportPair, name_the_edit
from dedupdb.web.listing import describe as describe_cluster

# The off-centre crop keeps 60 % of the width and height, from its lower left: this box of the
# original (fractions), and so about 36 % of its area.
CROP_BOX = (0.05, 0.33, 0.65, 0.93)
# A name a terminal or a page would act on, for the crop: shown, never obeyed.
CROP_NAME = "off<i>centre\x1b[2J.jpg"

_missing = chromium_missing()
needs_chromium = pytest.mark.skipif(_missing is not None, reason=_missing or "")


def _astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut()).convert("RGB")


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with a picture, its off-centre crop, a copy tilted by 25 degrees and another
    picture with an exact copy, indexed with --features and reported with --deep (JSON,
    HTML, CSV) in the folder's parent; yields that parent."""
    base = tmp_path_factory.mktemp("parts")
    root = base / "photos"
    root.mkdir()
    picture = _astronaut().crop((0, 40, 512, 424))  # 4:3: a frame that is not square
    w, h = picture.size
    picture.save(root / "original.jpg", quality=92)
    box = (CROP_BOX[0] * w, CROP_BOX[1] * h, CROP_BOX[2] * w, CROP_BOX[3] * h)
    picture.crop(tuple(round(v) for v in box)).save(root / CROP_NAME, quality=92)
    tilted = picture.rotate(25, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    # smaller than the original, which is then the keeper
    tilted.resize((tilted.width * 3 // 5, tilted.height * 3 // 5)).save(root / "tilted.jpg")
    Image.fromarray(data.coffee()).convert("RGB").save(root / "other.jpg", quality=92)
    (root / "other copy.jpg").write_bytes((root / "other.jpg").read_bytes())  # no part-copy
    db = str(base / "db.sqlite")
    _run("index", str(root), "--db", db, "--workers", "1", "-q", "--features")
    _run(
        "report", "--db", db, "--deep", "--quiet", "--json", str(base / "report.json"),
        "--html", str(base / "report.html"), "--csv", str(base / "report.csv"),
    )  # fmt: skip
    yield base


def _report(base: Path) -> Report:
    return Report.from_dict(json.loads((base / "report.json").read_text()))


def _cluster(report: Report) -> ReportCluster:
    found = [c for c in report.clusters if any(m.path.endswith(CROP_NAME) for m in c.members)]
    assert len(found) == 1
    return found[0]


def _id(cluster: ReportCluster, name: str) -> int:
    return next(m.image_id for m in cluster.members if os.path.basename(m.path) == name)


def _close(found: Any, expected: tuple[float, ...], within: float = 0.03) -> bool:
    return len(found) == 4 and all(
        abs(a - b) <= within for a, b in zip(found, expected, strict=True)
    )


def _share(words: str, suffix: str) -> int:
    matched = re.search(r"(\d+) % " + suffix, words)
    assert matched, words
    return int(matched.group(1))


# ----------------------------------------------------------------------------- words


def test_the_deep_report_says_what_each_part_copy_is(deep: Path) -> None:
    cluster = _cluster(_report(deep))
    crop, original = _id(cluster, CROP_NAME), _id(cluster, "original.jpg")
    words = member_words(cluster)
    assert words[crop].startswith("cropped copy — shows the lower left of ")
    assert 33 <= _share(words[crop], "of it") <= 39
    assert "tilted copy" in words[_id(cluster, "tilted.jpg")]
    (drawn,) = outlines(cluster)[original]
    assert drawn.part == crop and _close(drawn.region, CROP_BOX)
    assert drawn.label.startswith(f"the part {CROP_NAME} shows (cropped copy): the lower left, ")
    # The headline names the edits found by local features.
    assert any("tilted copy" in reason for reason in cluster.reasons), cluster.reasons


def test_where_a_part_lies_in_words() -> None:
    assert where((0.05, 0.33, 0.65, 0.93)) == "lower left"
    assert where((0.2, 0.2, 0.8, 0.8)) == "centre"
    assert where((0.5, 0.0, 1.0, 1.0)) == "right part"
    assert where((0.0, 0.0, 1.0, 0.5)) == "upper part"
    assert where((0.3, 0.05, 0.7, 0.3)) == "upper part"
    assert where((0.01, 0.0, 1.0, 0.99)) is None  # all of it: no place to name
    assert where(None) is None


def test_a_screenshot_and_the_picture_inside_it_say_which_is_which() -> None:
    pair = PartPair(part=1, whole=2, kind=SCREENSHOT, region=(0.1, 0.3, 0.9, 0.55))
    assert describe(pair, 2, "the keeper") == (
        "picture inside a screenshot — this screenshot shows the keeper in its centre "
        "(20 % of the screen)"
    )
    assert describe(pair, 1, "shot.png") == (
        "picture inside a screenshot — shot.png is a screenshot showing this picture, in its centre"
    )


def _member(image_id: int, name: str, *, keeper: bool, unedited: float = 1.0) -> Member:
    return Member(
        image_id=image_id,
        path=f"/photos/{name}",
        path_bytes_b64=None,
        size=1000,
        mtime_ns=1,
        content_hash=f"{image_id:064x}",
        width=400,
        height=300,
        format="PNG",
        distance=0 if keeper else 20,
        transform="identity",
        score=0.9 if keeper else 0.5,
        score_parts={"unedited": unedited},
        keeper=keeper,
    )


def _screenshot_cluster(reasons: list[str], kind: str | None = SCREENSHOT) -> ReportCluster:
    """The picture (kept) and a screenshot showing it: the pair the screenshot stage makes
    (UNCROP: a, the picture, is the part of b)."""
    return ReportCluster(
        id=1,
        exact=False,
        max_distance=20,
        reclaimable_bytes=1000,
        keeper=1,
        reasons=reasons,
        members=[
            _member(1, "picture.jpg", keeper=True),
            _member(2, "shot.png", keeper=False, unedited=0.0),
        ],
        pairs=[
            ReportPair(1, 2, 20, False, "uncrop", kind, [0.1, 0.3, 0.9, 0.55] if kind else None)
        ],
    )


def test_the_headline_names_the_screenshot_not_the_colours() -> None:
    """The screenshot's colours differ from the picture's because it is a screenshot."""
    named = name_the_edit(_screenshot_cluster(["largest: 4x3 vs 2x1", ORIGINAL_COLOURS]))
    assert named == [
        "largest: 4x3 vs 2x1",
        "unedited (another copy is a picture inside a screenshot)",
    ]
    # Without a kind, a hashes' crop pair (b the crop of a) is named as it always was.
    cropped = _screenshot_cluster([ORIGINAL_COLOURS], kind=None)
    cropped.pairs = [ReportPair(1, 2, 20, False, "crop")]
    assert name_the_edit(cropped) == [UNCROPPED]
    cropped.pairs = [ReportPair(1, 2, 20, False, "identity")]
    assert name_the_edit(cropped) == [ORIGINAL_COLOURS]
    # Reasons that do not speak of colours get the edit as a last reason.
    assert name_the_edit(_screenshot_cluster(["largest: 4x3 vs 2x1"])) == [
        "largest: 4x3 vs 2x1",
        "the copies include a picture inside a screenshot",
    ]


def test_the_review_list_badges_the_kind_of_copy() -> None:
    info = describe_cluster(_screenshot_cluster(["largest"]))
    assert info.badges[2] == ("screenshot",) and "screenshot" in info.kinds


def test_a_region_is_placed_on_a_file_with_borders(tmp_path: Path) -> None:
    """The region is a fraction of the picture inside the borders the index trims; over the
    thumbnail (the whole file) it is moved into the borders' frame."""
    picture = _astronaut().resize((400, 400))
    framed = Image.new("RGB", (600, 500), "white")
    framed.paste(picture, (150, 50))
    path = tmp_path / "framed.png"
    framed.save(path)
    member = Member(
        image_id=1, path=str(path), path_bytes_b64=None, size=path.stat().st_size, mtime_ns=1,
        content_hash="", width=600, height=500, format="PNG", distance=0,
        transform="identity", score=1.0, score_parts={}, keeper=True,
        picture_width=400, picture_height=400,
    )  # fmt: skip
    found = in_file_frame(member, (0.0, 0.0, 0.5, 1.0))
    assert _close(found, (150 / 600, 50 / 500, 350 / 600, 450 / 500), within=0.01)
    unframed = Member(**{**vars(member), "picture_width": 600, "picture_height": 500})
    assert in_file_frame(unframed, (0.0, 0.0, 0.5, 1.0)) == (0.0, 0.0, 0.5, 1.0)


# ----------------------------------------------------------------------------- CSV


def test_the_csv_has_kind_and_region_columns(deep: Path) -> None:
    rows = list(csv.DictReader(io.StringIO((deep / "report.csv").read_text())))
    with (deep / "report.csv").open() as file:
        header = next(csv.reader(file))
    assert tuple(header) == CSV_COLUMNS and header[-3:] == ["kind", "region", "region_of"]
    by_name = {os.path.basename(r["path"]): r for r in rows}
    crop, original = by_name[CROP_NAME], by_name["original.jpg"]
    assert crop["kind"] == "cropped copy" and crop["region_of"] == original["image_id"]
    assert _close([float(v) for v in crop["region"].split()], CROP_BOX)
    assert by_name["tilted.jpg"]["kind"] == "tilted copy"
    for name in ("other.jpg", "other copy.jpg"):
        assert by_name[name]["kind"] == by_name[name]["region"] == by_name[name]["region_of"] == ""


def test_a_report_without_part_copies_keeps_its_csv_cells_empty(deep: Path) -> None:
    report = _report(deep)
    for cluster in report.clusters:
        for pair in cluster.pairs:
            pair.kind = pair.region = None
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert rows and all(r["kind"] == r["region"] == r["region_of"] == "" for r in rows)


# ----------------------------------------------------------------------------- HTML


def _embedded(page: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_the_html_report_carries_the_words_and_outlines(deep: Path) -> None:
    page = (deep / "report.html").read_text()
    (cluster,) = [
        c
        for c in _embedded(page)["clusters"]
        if any(m["path"].endswith(CROP_NAME) for m in c["members"])
    ]
    by_name = {m["name"]: m for m in cluster["members"]}
    assert by_name[CROP_NAME]["part"].startswith("cropped copy — shows the lower left of ")
    (outline,) = by_name["original.jpg"]["outlines"]
    assert _close(outline["region"], CROP_BOX)
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert "<i>" not in page  # the crop's name is data, escaped, never markup


def test_pairs_without_a_kind_render_as_before(deep: Path) -> None:
    report = _report(deep)
    for cluster in report.clusters:
        for pair in cluster.pairs:
            pair.kind = pair.region = None
        cluster.reasons = [r for r in cluster.reasons if not r.startswith("the copies include")]
    for cluster in _embedded(render_html(report))["clusters"]:
        for member in cluster["members"]:
            assert "part" not in member and "outlines" not in member


# ----------------------------------------------------------------------------- browsers


def _picture_box(image_box: dict[str, float], width: int, height: int) -> dict[str, float]:
    """Where a picture of width x height is drawn in an image box with object-fit: contain."""
    scale = min(image_box["width"] / width, image_box["height"] / height)
    shown_w, shown_h = width * scale, height * scale
    return {
        "x": image_box["x"] + (image_box["width"] - shown_w) / 2,
        "y": image_box["y"] + (image_box["height"] - shown_h) / 2,
        "width": shown_w,
        "height": shown_h,
    }


def _assert_outline_over(
    outline: dict[str, float], picture: dict[str, float], region: Any, within: float = 3
) -> None:
    """The outline's box is the region of the picture's box, within 3 px (its stroke)."""
    left, top, right, bottom = region
    expected = (
        picture["x"] + left * picture["width"],
        picture["y"] + top * picture["height"],
        (right - left) * picture["width"],
        (bottom - top) * picture["height"],
    )
    found = (outline["x"], outline["y"], outline["width"], outline["height"])
    assert all(abs(a - b) <= within for a, b in zip(found, expected, strict=True)), (
        found,
        expected,
    )


@needs_chromium
def test_the_html_report_outlines_the_part_in_the_browser(deep: Path) -> None:
    cluster = _cluster(_report(deep))
    (drawn,) = outlines(cluster)[_id(cluster, "original.jpg")]
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((deep / "report.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        outline = page.get_by_role("img", name=drawn.label)
        assert outline.count() == 1 and outline.is_visible()
        image = outline.locator("xpath=preceding-sibling::img")
        box, image_box = outline.bounding_box(), image.bounding_box()
        assert box is not None and image_box is not None
        _assert_outline_over(box, image_box, drawn.region)  # the thumbnail is the whole frame
        crop = page.locator(".member", has=page.locator(".name", has_text=CROP_NAME))
        words = crop.locator(".part")
        assert words.is_visible()
        assert words.inner_text().startswith("cropped copy — shows the lower left of ")
        assert page.locator(".member .part", has_text="tilted copy").count() >= 1
        assert page.locator("i", has_text="centre").count() == 0  # the name made no element
        # The exact copies show no words and no outline, as before.
        plain = page.locator(".cluster", has_text="other copy.jpg")
        assert plain.count() == 1 and plain.locator(".part, .outline").count() == 0
        page.select_option("#kind", "parts")  # the filter keeps the clusters with part-copies
        assert page.locator(".cluster").count() == 1
        assert page.locator(".cluster", has_text="other copy.jpg").count() == 0
        assert errors == []


@needs_chromium
def test_the_review_page_outlines_the_part_in_the_browser(deep: Path) -> None:
    """`dedupdb serve` rebuilds the last report (--deep) and shows the same."""
    cluster = _cluster(_report(deep))
    original = next(m for m in cluster.members if m.path.endswith("original.jpg"))
    (drawn,) = outlines(cluster)[original.image_id]
    with served(deep / "db.sqlite", deep / "cache") as url, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.set_default_timeout(30_000)
        page.goto(url)
        page.wait_for_selector(".cluster-row")  # once the report is built
        page.fill("#search", "original")
        expect(page.locator(".cluster-row")).to_have_count(1)
        page.click(".cluster-row .row-title")
        page.wait_for_selector("#copies")
        copy = page.locator(f".copy[data-id='{original.image_id}']")
        image = copy.locator(".pic img")
        image.evaluate("img => img.complete || new Promise(done => img.onload = done)")
        # The page shows the name's control characters as text (``web.pages.visible``).
        outline = page.get_by_role("img", name=drawn.label.replace("\x1b", "\\x1b"))
        assert outline.count() == 1
        box, image_box = outline.bounding_box(), image.bounding_box()
        assert box is not None and image_box is not None
        picture = _picture_box(image_box, original.width, original.height)
        _assert_outline_over(box, picture, drawn.region)
        natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert abs(natural[0] / natural[1] - original.width / original.height) < 0.02
        crop = page.locator(".copy", has=page.locator(".path", has_text="off<i>centre"))
        words = crop.locator(".part").inner_text()
        assert words.startswith("cropped copy — shows the lower left of "), words
        assert page.locator(".copy .part", has_text="tilted copy").count() >= 1
        assert page.locator(".badge.tilted").count() >= 1
        # The crop's name, with its escape character made visible, never acted on.
        assert "\\x1b[2J" in crop.locator(".path").inner_text()

        # Full size, side by side: the outline over the original's pane, also when zoomed.
        page.keyboard.press("f")
        pane = page.locator("#panes .pane", has_text="original.jpg")
        expect(pane).to_have_count(1)
        full = pane.locator("img")
        full.evaluate("img => img.complete || new Promise(done => img.onload = done)")
        for _ in range(2):
            box, full_box = pane.locator("rect.outline").bounding_box(), full.bounding_box()
            assert box is not None and full_box is not None
            picture = _picture_box(full_box, original.width, original.height)
            zoom = page.locator("#zoom-level").inner_text()
            scale = 1 if zoom == "fit" else int(zoom.rstrip("%")) / 100
            _assert_outline_over(box, picture, drawn.region, within=3 * scale)  # the stroke
            page.click("[data-zoom=in]")
        assert zoom != "fit"
        assert errors == []


def test_a_toned_copy_is_named_as_a_colour_edit_not_outlined_as_a_part() -> None:
    """A toned pair ("same picture, sepia") has a kind but no part: the toned member says
    what it is, nothing is outlined, and the headline names the toning, not a part-copy."""
    toned = _screenshot_cluster([ORIGINAL_COLOURS], kind=None)
    toned.pairs = [ReportPair(1, 2, 3, False, "identity", "same picture, sepia", None)]
    assert member_words(toned) == {2: "same picture, sepia"}
    assert outlines(toned) == {}
    assert name_the_edit(toned) == ["original colours (another copy is the same picture, sepia)"]
    assert describe_cluster(toned).badges[2] == ("recoloured",)  # not a part-copy badge
