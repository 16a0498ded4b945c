"""Pictures shown inside others (``dedupdb.inner``): found at index time, stored, matched
against the pictures they show, and a veto on screenshots of different pictures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import photo as smooth_photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageOps
from screens import CHROMES, PHOTOS, Chrome, photo, screenshot
from sqlalchemy import select, update

from dedupdb import hashes, inner, match
from dedupdb.cli import cli
from dedupdb.decode import DecodedImage, content_box, decode
from dedupdb.fingerprint.compute import fingerprint
from dedupdb.fingerprint.records import Fingerprint
from dedupdb.hashparams import HashParams
from dedupdb.indexing import IndexOptions, index
from dedupdb.report import ReportOptions, build_report
from dedupdb.store import Store, catalog
from dedupdb.store.schema import Image as ImageRow


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _fingerprint(image: Image.Image) -> Fingerprint:
    found = fingerprint(_jpeg(image))
    assert isinstance(found, Fingerprint)
    return found


def _luma(image: Image.Image) -> np.ndarray:
    decoded = decode(_jpeg(image))
    assert isinstance(decoded, DecodedImage)
    return decoded.content.luma


def _shown_box(picture: Image.Image, chrome: Chrome) -> tuple[float, float, float, float]:
    """Where ``screens.screenshot`` pastes the picture, as fractions of the screen."""
    width, height = chrome.size
    shown = picture.copy()
    shown.thumbnail((round(width * chrome.width_share), round(height * 0.6)))
    x, y = (width - shown.width) // 2, round(height * chrome.top)
    return x / width, y / height, (x + shown.width) / width, (y + shown.height) / height


def _upright_phash(found: Fingerprint) -> int:
    return hashes.unpack_variants(found.phash, HashParams())[0]


def _nearest(shown: inner.InnerPicture, target: int) -> int:
    return min(hashes.hamming(v, target) for v in shown.phash)


# Photos whose edges stand out from both themes' pages (a dark photo on a dark page, or a
# pale one on a light page, blends into it: see docs/matching-heavy.md).
CONTRASTED = ("astronaut", "chelsea", "immunohistochemistry")


@pytest.mark.parametrize("chrome", CHROMES, ids=range(len(CHROMES)))
@pytest.mark.parametrize("name", CONTRASTED)
def test_the_picture_inside_a_screenshot_is_found_with_its_box(name: str, chrome: Chrome) -> None:
    picture = photo(name)
    found = _fingerprint(screenshot(picture, chrome, seed=len(name)))
    assert found.inner_picture is not None
    unpacked = inner.unpack(found.inner_picture)
    assert unpacked is not None
    shown, params = unpacked
    assert params.hash_size == 8
    expected = _shown_box(picture, chrome)
    # Rounded corners cost the band a few rows at its top and bottom.
    slack = 0.01 + chrome.rounded / chrome.size[1]
    assert np.allclose(shown.box, expected, atol=slack), (shown.box, expected)
    original = _fingerprint(picture)
    assert _nearest(shown, _upright_phash(original)) <= match.INNER_THRESHOLD


def test_most_screenshots_of_every_photo_are_found() -> None:
    """Over every photo (dark and pale ones too) and every chrome, most inner pictures are
    found and match their photo."""
    matched = 0
    for name in PHOTOS:
        picture = photo(name)
        target = _upright_phash(_fingerprint(picture))
        for number, chrome in enumerate(CHROMES):
            found = _fingerprint(screenshot(picture, chrome, seed=number))
            if found.inner_picture is None:
                continue
            unpacked = inner.unpack(found.inner_picture)
            assert unpacked is not None
            matched += _nearest(unpacked[0], target) <= match.INNER_THRESHOLD
    assert matched >= 0.8 * len(PHOTOS) * len(CHROMES)


def _product(seed: int) -> Image.Image:
    """A product shot: a shaded object on white, a soft shadow under it."""
    rng = np.random.default_rng(seed)
    shot = Image.new("RGB", (800, 800), "white")
    draw = ImageDraw.Draw(shot)
    colour = tuple(int(c) for c in rng.integers(40, 200, 3))
    draw.ellipse((200, 600, 600, 680), fill=(225, 225, 225))
    draw.ellipse((220, 180, 580, 560), fill=colour)
    draw.text((330, 360), f"ITEM {seed}", fill="white")
    return shot


def _page(skip: range = range(0)) -> Image.Image:
    """A text page with a letterhead (no text on the rows in ``skip``)."""
    page = Image.new("RGB", (900, 1270), "white")
    draw = ImageDraw.Draw(page)
    draw.rectangle((60, 60, 180, 150), fill=(20, 60, 140))
    for line in range(24):
        y = 240 + line * 40
        if y not in skip and y + 20 not in skip:
            draw.text((60, y), "invoice total amount payment due " * 2, fill="black")
    return page


def test_plain_photos_products_and_pages_show_no_inner_picture() -> None:
    pictures = [photo(name) for name in PHOTOS]
    pictures += [smooth_photo(seed, (480, 360)) for seed in range(6)]
    pictures += [_product(seed) for seed in range(4)] + [_page()]
    for picture in pictures:
        assert _fingerprint(picture).inner_picture is None


def test_a_pasted_photo_in_a_document_is_found() -> None:
    picture = photo("coffee")
    picture.thumbnail((500, 500))
    page = _page(skip=range(470, 500 + picture.height + 30))
    page.paste(picture, (200, 500))
    found = _fingerprint(page)
    assert found.inner_picture is not None
    unpacked = inner.unpack(found.inner_picture)
    assert unpacked is not None
    # The box is a share of the page inside its trimmed white margins, as every region is.
    decoded = decode(_jpeg(page))
    assert isinstance(decoded, DecodedImage)
    left, top, right, bottom = content_box(decoded.luma)
    scale = decoded.picture.width / page.width
    inside = [(v * scale - o) / (e - o) for v, o, e in ((200, left, right), (500, top, bottom))]
    far = [
        (v * scale - o) / (e - o)
        for v, o, e in ((700, left, right), (500 + picture.height, top, bottom))
    ]
    expected = (inside[0], inside[1], far[0], far[1])
    assert np.allclose(unpacked[0].box, expected, atol=0.01)


@settings(max_examples=60, deadline=None)
@given(
    box=st.tuples(*(st.floats(0.0, 1.0, allow_nan=False) for _ in range(4))),
    size=st.sampled_from([8, 16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_pack_and_unpack_round_trip(
    box: tuple[float, float, float, float], size: int, seed: int
) -> None:
    params = HashParams(size)
    rng = np.random.default_rng(seed)
    phash = tuple(int.from_bytes(rng.bytes(params.nbytes), "big") for _ in range(8))
    shown = inner.InnerPicture(box, phash, rng.bytes(48))
    unpacked = inner.unpack(inner.pack(shown, params))
    assert unpacked is not None
    back, back_params = unpacked
    assert back_params.hash_size == size
    assert back.phash == phash and back.colour == shown.colour
    assert np.allclose(back.box, box, atol=1 / 65535)


def test_unpack_refuses_other_blobs() -> None:
    assert inner.unpack(b"") is None
    assert inner.unpack(b"\x02" + bytes(200)) is None
    shown = inner.InnerPicture((0.1, 0.2, 0.9, 0.8), tuple(range(8)), bytes(48))
    assert inner.unpack(inner.pack(shown, HashParams())[:-1]) is None


@settings(max_examples=40, deadline=None)
@given(
    left=st.floats(0.0, 0.5),
    top=st.floats(0.0, 0.7),
    share=st.floats(0.2, 1.0),
    level=st.integers(0, 255),
    seed=st.integers(0, 1000),
)
def test_a_found_box_lies_inside_the_frame_around_the_picture(
    left: float, top: float, share: float, level: int, seed: int
) -> None:
    """Wherever a textured picture sits on a flat page, a box found lies inside the frame
    and overlaps the picture."""
    width, height = 180, 390
    page = np.full((height, width), level, dtype=np.uint8)
    w = max(4, round(share * width * (1 - left)))
    rng = np.random.default_rng(seed)
    h = max(4, min(height - round(top * height), round(w * rng.uniform(0.5, 1.5))))
    x, y = round(left * width), round(top * height)
    texture = rng.integers(0, 256, (h, w), dtype=np.uint8)
    page[y : y + h, x : x + w] = texture[: height - y, : width - x]
    found = inner.find(page)
    if found is None:
        return
    fl, ft, fr, fb = found
    assert 0 <= fl < fr <= width and 0 <= ft < fb <= height
    assert fl < x + w and fr > x and ft < y + h and fb > y


# ---------------------------------------------------------------- end to end


def _index_and_report(root: Path, db: Path) -> dict[str, object]:
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(root), "--db", str(db), "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    out = root.parent / "report.json"
    result = runner.invoke(cli, ["report", "--db", str(db), "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(out.read_text())
    return report


def _clusters(report: dict[str, object]) -> list[dict[str, object]]:
    clusters = report["clusters"]
    assert isinstance(clusters, list)
    return clusters


def _names(cluster: dict[str, object]) -> set[str]:
    members = cluster["members"]
    assert isinstance(members, list)
    return {Path(m["path"]).name for m in members}


SHARED = Chrome(width_share=0.45)


def _screenshots(root: Path) -> None:
    """A photo, its screenshot and the screenshot mirrored, and a screenshot of another photo
    in the same chrome (whose frame the hashes alone join with the first screenshot)."""
    root.mkdir()
    chrome = SHARED
    picture = photo("astronaut")
    picture.save(root / "photo.jpg", quality=92)
    shot = screenshot(picture, chrome)
    shot.save(root / "screenshot.jpg", quality=90)
    ImageOps.mirror(shot).save(root / "mirrored.jpg", quality=90)
    screenshot(photo("immunohistochemistry"), chrome).save(root / "other.jpg", quality=90)


def test_report_finds_a_screenshot_and_its_mirror_with_the_picture(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _screenshots(root)
    report = _index_and_report(root, tmp_path / "db.sqlite")
    clusters = _clusters(report)
    assert [_names(c) for c in clusters] == [{"photo.jpg", "screenshot.jpg", "mirrored.jpg"}]
    (cluster,) = clusters
    members = cluster["members"]
    assert isinstance(members, list)
    keeper = next(m for m in members if m["keeper"])
    assert Path(keeper["path"]).name == "photo.jpg"  # 512 px, smaller than the screenshots
    reasons = cluster["reasons"]
    assert isinstance(reasons, list) and reasons
    assert "inside borders" in reasons[0], reasons
    pairs = cluster["pairs"]
    assert isinstance(pairs, list)
    shown = [p for p in pairs if p["kind"] == match.INSIDE_A_SCREENSHOT]
    assert len(shown) == 2
    expected = _shown_box(photo("astronaut"), SHARED)
    regions = sorted(tuple(p["region"]) for p in shown)
    assert np.allclose(regions[0], expected, atol=0.01)
    mirrored = (1 - expected[2], expected[1], 1 - expected[0], expected[3])
    assert np.allclose(regions[1], mirrored, atol=0.01) or np.allclose(
        regions[1], expected, atol=0.01
    )


def test_screenshots_of_different_pictures_are_not_joined(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _screenshots(root)
    (root / "photo.jpg").unlink()
    first, other = (
        _fingerprint(Image.open(root / "screenshot.jpg")),
        _fingerprint(Image.open(root / "other.jpg")),
    )
    # The chrome alone makes their full frames a pair to the hashes.
    params = HashParams()
    distance = hashes.hamming(
        hashes.unpack_variants(first.dhash, params)[0],
        hashes.unpack_variants(other.dhash, params)[0],
    )
    assert distance <= match.DEFAULT_THRESHOLDS["dhash"]
    report = _index_and_report(root, tmp_path / "db.sqlite")
    assert [_names(c) for c in _clusters(report)] == [{"screenshot.jpg", "mirrored.jpg"}]


def test_rows_without_a_stored_inner_picture_match_as_before(store: Store, tmp_path: Path) -> None:
    """Rows indexed before inner pictures were stored (NULL) are matched by their full
    frames only: the chrome joins the screenshots, and none joins the photo."""
    root = tmp_path / "photos"
    _screenshots(root)
    index(store, root, IndexOptions(in_process=True))
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(ImageRow.relpath, ImageRow.inner_picture)).all())
    assert stored[b"photo.jpg"] is None
    assert all(stored[name] is not None for name in (b"screenshot.jpg", b"mirrored.jpg"))
    rows = catalog.load_rows(store, "phash", "dhash")
    assert rows.inner is not None and int(rows.inner.has.sum()) == 3
    found = build_report(store, ReportOptions())
    assert [len(c.members) for c in found.clusters] == [3]
    with store.engine.begin() as conn:
        conn.execute(update(ImageRow).values(inner_picture=None))
    assert catalog.load_rows(store, "phash", "dhash").inner is None
    before = build_report(store, ReportOptions())
    names = [{Path(m.path).name for m in c.members} for c in before.clusters]
    assert names == [{"screenshot.jpg", "mirrored.jpg", "other.jpg"}]


def test_a_screenshot_joins_its_picture_with_the_picture_s_crops(tmp_path: Path) -> None:
    """The screenshot shows the picture, not its crops: it joins the picture's cluster as a
    crop does, rather than by complete linkage, which would leave the crop out."""
    root = tmp_path / "photos"
    root.mkdir()
    picture = photo("chelsea")
    picture.save(root / "photo.jpg", quality=92)
    w, h = picture.size
    picture.crop((round(0.1 * w), round(0.1 * h), round(0.9 * w), round(0.9 * h))).save(
        root / "crop.jpg", quality=92
    )
    shot = screenshot(picture, Chrome(dark=True, width_share=0.7, top=0.25))
    shot.save(root / "screenshot.jpg", quality=90)
    ImageOps.mirror(shot).save(root / "mirrored.jpg", quality=90)
    report = _index_and_report(root, tmp_path / "db.sqlite")
    assert [_names(c) for c in _clusters(report)] == [
        {"photo.jpg", "crop.jpg", "screenshot.jpg", "mirrored.jpg"}
    ]
