"""The HTML report: self-contained, escaped against hostile file names, rendered by a browser."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
import tempfile
import warnings
from html.parser import HTMLParser
from pathlib import Path

import hostile
import numpy as np
import pytest
from conftest import photo
from PIL import Image

from dedupdb.render.html import make_thumbnails, render_html, thumbnail_data_uri
from dedupdb.report import Member, Report, ReportCluster, Summary

HOSTILE = [
    "/photos/<script>alert(1)</script>.jpg",
    '/photos/"onerror=alert(2) x=".jpg',
    "/photos/<img src=x onerror=\"document.body.classList.add(atob('cHduZWQ='))\">.png",
    "/photos/</script><script>document.title='PWN'+'ED'</script>.jpg",
    "/photos/it's & <b>bold</b>.jpg",
]


class Tags(HTMLParser):
    """The elements and attribute names of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.update(name for name, _ in attrs)


def member(image_id: int, path: str, keeper: bool, size: int = 1000) -> Member:
    return Member(
        image_id=image_id,
        path=path,
        path_bytes_b64=None,
        size=size,
        mtime_ns=1,
        content_hash=f"{image_id:064x}",
        width=400,
        height=300,
        format="JPEG",
        distance=0 if keeper else 3,
        transform="identity",
        score=0.9 if keeper else 0.5,
        score_parts={"resolution": 1.0},
        keeper=keeper,
    )


def synthetic_report(n_clusters: int, paths: list[str] | None = None) -> Report:
    clusters = []
    for i in range(n_clusters):
        a = paths[(2 * i) % len(paths)] if paths else f"/photos/{i:05d}/IMG_{i}.jpg"
        b = paths[(2 * i + 1) % len(paths)] if paths else f"/backup/{i:05d}/IMG_{i} (1).jpg"
        members = [member(2 * i + 1, a, True, 5000), member(2 * i + 2, b, False, 4000 - i % 7)]
        clusters.append(
            ReportCluster(
                id=i + 1,
                exact=i % 3 == 0,
                max_distance=0 if i % 3 == 0 else 3,
                reclaimable_bytes=members[1].size,
                keeper=members[0].image_id,
                reasons=[f"largest: 400x300 vs 200x150 <i>{i}</i>"],
                members=members,
            )
        )
    return Report(
        generated_at="2026-11-25T10:00:00Z",
        database="/tmp/<db>.sqlite",
        settings={
            "hash": "phash",
            "threshold": 10,
            "rotations": True,
            "ssim": None,
            "prefer": ["<b>originals</b>"],
            "avoid": [],
        },
        summary=Summary(
            clusters=n_clusters,
            duplicates=n_clusters,
            reclaimable_bytes=sum(c.reclaimable_bytes for c in clusters),
            images=2 * n_clusters,
        ),
        clusters=clusters,
    )


def embedded_data(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert match is not None
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_hostile_file_names_are_escaped() -> None:
    page = render_html(synthetic_report(3, HOSTILE))
    # Only our own two script elements exist; no name opened or closed one.
    assert page.count("<script") == 2
    assert page.count("</script>") == 2
    for path in HOSTILE:
        assert path not in page
    parsed = Tags()
    parsed.feed(page)
    assert "img" not in parsed.tags
    assert "b" not in parsed.tags
    assert parsed.tags.count("script") == 2
    assert not [name for name in parsed.attributes if name.startswith("on")]
    assert "<b>originals</b>" not in page  # a hostile --prefer pattern, autoescaped
    assert "&lt;b&gt;originals&lt;/b&gt;" in page
    assert "&lt;db&gt;" in page
    # ... and the data still carries every name exactly.
    data = embedded_data(page)
    names = {m["path"] for c in data["clusters"] for m in c["members"]}  # type: ignore[attr-defined]
    assert names == set(HOSTILE)


def test_page_is_self_contained() -> None:
    page = render_html(synthetic_report(2))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page
    assert "<link" not in page


def test_empty_report_renders() -> None:
    report = synthetic_report(0)
    page = render_html(report)
    assert embedded_data(page)["clusters"] == []
    assert "No duplicates found" in page  # the script's empty state


def test_summary_is_shown() -> None:
    page = render_html(synthetic_report(4))
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "Reclaimable" in text
    assert "16.0 KB" in text  # 3999 + 3998 + 3997 + 3996 bytes


def test_thumbnails_are_small_upright_jpegs(tmp_path: Path) -> None:
    path = tmp_path / "tall.jpg"
    im = photo(3, (800, 400))
    exif = Image.Exif()
    exif[274] = 6  # stored sideways: displayed rotated by 90 degrees
    im.save(path, quality=90, exif=exif)
    uri = thumbnail_data_uri(bytes(path))
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert len(raw) < 20_000
    with Image.open(io.BytesIO(raw)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (80, 160)  # upright: portrait


def test_a_thumbnail_of_a_file_with_corrupt_exif_warns_nothing(tmp_path: Path) -> None:
    # Pillow warns "Tag data larger than file"; pytest turns an escaping warning into an
    # error. The index kept the warning as the file's note: the report prints nothing.
    path = tmp_path / "corrupt-exif.jpg"
    path.write_bytes(hostile.jpeg_with_exif(hostile.picture(3), hostile.corrupt_exif()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        uri = thumbnail_data_uri(bytes(path))
    assert uri is not None and caught == []


def test_thumbnails_of_png_with_alpha_and_16_bit(tmp_path: Path) -> None:
    rgba = photo(4).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(tmp_path / "alpha.png")
    # Large enough that Pillow reduces it before resampling (which "I;16" does not support).
    deep = np.linspace(0, 65535, 1800 * 1200).reshape(1200, 1800).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert thumbnail_data_uri(bytes(tmp_path / "alpha.png")) is not None
    uri = thumbnail_data_uri(bytes(tmp_path / "deep.png"))
    assert uri is not None
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as thumb:
        assert thumb.size == (160, 107)
        low, high = thumb.getextrema()[0]
        assert high - low > 200  # the gradient, dark to light


def test_missing_or_broken_file_has_no_thumbnail(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert thumbnail_data_uri(bytes(tmp_path / "gone.jpg")) is None
    assert thumbnail_data_uri(bytes(tmp_path / "broken.jpg")) is None


def test_thumbnails_made_in_threads_keep_their_order(tmp_path: Path) -> None:
    paths = []
    for i in range(8):
        path = tmp_path / f"p{i}.jpg"
        photo(i, (64 + 8 * i, 48)).save(path, quality=80)
        paths.append(str(path))
    paths[5] = str(tmp_path / "gone.jpg")
    report = synthetic_report(4, paths)
    pooled = make_thumbnails(report, workers=2)
    assert pooled == make_thumbnails(report, workers=1)
    assert set(pooled) == {1, 2, 3, 4, 5, 7, 8}  # image 6 is the missing file


def test_make_thumbnails_limits_to_the_first_clusters(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        path = tmp_path / f"p{i}.jpg"
        photo(i).save(path, quality=80)
        paths.append(str(path))
    report = synthetic_report(2, paths)
    seen: list[tuple[int, int]] = []
    thumbs = make_thumbnails(report, clusters=1, progress=lambda d, t: seen.append((d, t)))
    assert set(thumbs) == {1, 2}
    assert seen[-1] == (2, 2)
    page = render_html(report, thumbs, thumbnail_clusters=1)
    assert page.count("data:image/jpeg;base64,") >= 2


# ----------------------------------------------------------------------------- browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
def test_browser_renders_a_page_of_clusters_safely(tmp_path: Path) -> None:
    report = synthetic_report(10_000, [*HOSTILE, "/photos/a.jpg"])
    html_text = render_html(report)
    assert len(html_text) < 12_000_000  # 10,000 clusters without previews
    page = tmp_path / "report.html"
    page.write_text(html_text, encoding="utf-8")
    result = chromium("--dump-dom", page.as_uri())
    dom = result.stdout
    assert 'data-rendered="10000"' in dom, result.stderr[-2000:]
    assert dom.count('<article class="cluster"') == 25  # one page, not 10,000 clusters
    assert "Showing 1–25 of 10,000 clusters" in dom
    # Hostile names are text in the DOM, never elements or attributes.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in dom
    assert "pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]  # no onerror ran
    assert "<title>PWNED" not in dom  # no injected script ran
    parsed = Tags()
    parsed.feed(dom.split('id="clusters"', 1)[1])
    assert not [name for name in parsed.attributes if name.startswith("on")]
    assert "it's &amp; &lt;b&gt;bold&lt;/b&gt;.jpg" in dom


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
def test_browser_screenshot_is_not_blank(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        path = tmp_path / f"p{i}.jpg"
        photo(i).save(path, quality=80)
        paths.append(str(path))
    report = synthetic_report(2, paths)
    page = tmp_path / "report.html"
    page.write_text(render_html(report, make_thumbnails(report)), encoding="utf-8")
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, thumbnails, not a blank page
