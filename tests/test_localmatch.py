"""The local-feature stage: `index --features` stores ORB keypoints, `report --deep` finds heavy
crops and tilts that the hashes miss, and keeps pages of one document template apart."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont, ImageOps
from skimage import data
from sqlalchemy import func, select, update

from dedupdb import features, hashes, localmatch
from dedupdb.cli import cli
from dedupdb.decode import DecodedImage, decode
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import Pair
from dedupdb.store import Store, catalog, open_store
from dedupdb.store.schema import Image as ImageRow
from dedupdb.store.schema import LocalFeatures as LocalFeaturesRow


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def _luma(image: Image.Image) -> np.ndarray:
    decoded = decode(_jpeg(image))
    assert isinstance(decoded, DecodedImage)
    return decoded.content.luma


def _jpeg(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def _page(seed: int) -> Image.Image:
    """A page of one letter template (same letterhead) with different text."""
    rng = random.Random(seed)
    page = Image.new("RGB", (900, 1270), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=24)
    draw.rectangle((60, 60, 180, 150), fill=(20, 60, 140))
    draw.text((220, 80), "ACME Supplies Ltd.", font=ImageFont.load_default(size=40), fill="black")
    words = ("invoice", "total", "amount", "payment", "customer")
    words += ("order", "item", "price", "tax", "due")
    for line in range(22):
        text = " ".join(rng.choice(words) for _ in range(7))
        draw.text((60, 240 + line * 42), text, font=font, fill=(30, 30, 30))
    return page


def _tilted(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))


def test_features_round_trip_through_their_columns() -> None:
    found = features.extract(_luma(_photo("astronaut")))
    assert 100 <= len(found.points) <= features.MAX_FEATURES
    back = features.unpack(features.pack(found))
    assert back.width == found.width and back.height == found.height
    assert np.array_equal(back.descriptors, found.descriptors)
    # Stored in quarter pixels.
    assert np.abs(back.points - found.points).max() <= 0.125
    assert np.array_equal(back.thumb, found.thumb)


def test_every_pyramid_level_keeps_keypoints() -> None:
    """The coarse levels, where a picture meets a much smaller copy of itself, are not
    crowded out by the fine ones (ORB alone gives them a few percent)."""
    octaves = np.repeat(np.arange(8), [900, 500, 300, 200, 120, 60, 30, 10])
    responses = np.random.default_rng(1).random(len(octaves))
    chosen = features._balanced(octaves, responses)
    assert len(chosen) == features.MAX_FEATURES
    per_level = np.bincount(octaves[chosen], minlength=8)
    assert per_level[7] == 10 and per_level[6] == 30  # all that the coarse levels had
    assert per_level[0] == per_level[1]  # the rest shared evenly


def test_text_pages_look_like_text_and_photos_do_not() -> None:
    assert features.text_likeness(_luma(_page(1))) >= localmatch.TEXT_LIKE
    for name in ("astronaut", "coffee", "chelsea"):
        assert features.text_likeness(_luma(_photo(name))) < localmatch.TEXT_LIKE


def test_an_off_centre_crop_and_a_tilt_are_verified_with_their_region() -> None:
    picture = _photo("astronaut")
    original = features.extract(_luma(picture))
    w, h = picture.size
    crop = features.extract(_luma(picture.crop((0, round(0.3 * h), round(0.6 * w), h))))
    found = localmatch.verify(original, crop)
    assert found is not None and localmatch.accepted(found)
    assert found.part == 1 and found.kind == localmatch.CROPPED
    left, top, right, bottom = found.region
    assert left < 0.05 and abs(top - 0.3) < 0.05 and abs(right - 0.6) < 0.05 and bottom > 0.95
    turned = localmatch.verify(original, features.extract(_luma(_tilted(picture, 25))))
    assert turned is not None and localmatch.accepted(turned)
    assert turned.kind == localmatch.TILTED and abs(abs(turned.angle) - 25) < 2


def test_different_pictures_are_not_verified() -> None:
    one = features.extract(_luma(_photo("astronaut")))
    for name in ("coffee", "chelsea", "rocket"):
        found = localmatch.verify(one, features.extract(_luma(_photo(name))))
        assert found is None or not localmatch.accepted(found)


def test_candidates_pair_pictures_that_share_descriptors() -> None:
    picture = _photo("coffee")
    w, h = picture.size
    pictures = [
        features.extract(_luma(picture)),
        features.extract(_luma(_photo("chelsea"))),
        features.extract(_luma(picture.crop((w // 5, h // 5, w, h)))),
    ]
    pairs = localmatch.candidate_pairs(pictures).tolist()
    assert [0, 2] in pairs


def _index_and_report(root: Path, db: Path, *, deep: bool) -> dict[str, object]:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["index", str(root), "--db", str(db), "--workers", "1", "-q", "--features"]
    )
    assert result.exit_code == 0, result.output
    out = root.parent / "report.json"
    args = ["report", "--db", str(db), "--json", str(out), "--quiet"]
    result = runner.invoke(cli, [*args, "--deep"] if deep else args)
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(out.read_text())
    return report


def _groups(report: dict[str, object]) -> list[set[str]]:
    clusters = report["clusters"]
    assert isinstance(clusters, list)
    return [{Path(m["path"]).name for m in c["members"]} for c in clusters]


@pytest.mark.slow
def test_report_deep_finds_heavy_edits_the_hashes_miss(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    picture = _photo("astronaut")
    w, h = picture.size
    picture.save(root / "original.jpg", quality=92)
    picture.crop((round(0.05 * w), round(0.33 * h), round(0.65 * w), round(0.93 * h))).save(
        root / "offcentre.jpg", quality=92
    )
    _tilted(picture, 25).save(root / "tilted.jpg", quality=92)
    _photo("coffee").save(root / "other.jpg", quality=92)
    for page in range(3):
        _page(page).save(root / f"page{page}.jpg", quality=92)

    plain = _index_and_report(root, tmp_path / "db.sqlite", deep=False)
    assert not any({"offcentre.jpg", "tilted.jpg"} & g for g in _groups(plain))

    report = _index_and_report(root, tmp_path / "db.sqlite", deep=True)
    groups = _groups(report)
    assert {"original.jpg", "offcentre.jpg", "tilted.jpg"} in groups
    assert not any(len({n for n in g if n.startswith("page")}) > 1 for g in groups)
    clusters = report["clusters"]
    assert isinstance(clusters, list)
    kinds = {p["kind"] for c in clusters for p in c["pairs"] if p.get("kind")}
    assert localmatch.TILTED in kinds
    assert all(
        p["region"] is not None and len(p["region"]) == 4
        for c in clusters
        for p in c["pairs"]
        if p.get("kind")
    )


def test_report_deep_without_stored_features_finds_what_the_hashes_find(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    picture = _photo("chelsea")
    picture.save(root / "a.jpg", quality=92)
    picture.save(root / "b.jpg", quality=60)
    runner = CliRunner()
    db = str(tmp_path / "db.sqlite")
    result = runner.invoke(cli, ["index", str(root), "--db", db, "-q", "--workers", "1"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "r.json"
    result = runner.invoke(cli, ["report", "--db", db, "--deep", "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert _groups(json.loads(out.read_text())) == [{"a.jpg", "b.jpg"}]


@pytest.mark.slow
def test_report_deep_keeps_pages_of_one_template_apart_but_not_a_page_and_its_copy(
    tmp_path: Path,
) -> None:
    """pHash joins pages of one letterhead (the issue's documents): the fine-hash guard keeps
    them apart (``match.fine_guard``); for rows indexed before it (no fine hash) --deep does,
    and either way only the page and its resized, re-compressed copy stay together."""
    root = tmp_path / "scans"
    root.mkdir()
    for page in range(4):
        _page(page).save(root / f"page{page}.jpg", quality=92)
    _page(0).resize((600, 847)).save(root / "page0_small.jpg", quality=70)
    db = tmp_path / "db.sqlite"
    together = [{"page0.jpg", "page0_small.jpg"}]

    assert _groups(_index_and_report(root, db, deep=False)) == together
    store = open_store(db)
    try:
        with store.transaction() as session:
            session.execute(update(ImageRow).values(fine_hash=None))
    finally:
        store.close()
    plain = _groups(_index_and_report(root, db, deep=False))
    assert any(len(g - {"page0_small.jpg"}) > 1 for g in plain)  # what --deep mends
    assert _groups(_index_and_report(root, db, deep=True)) == together


@pytest.mark.slow
def test_report_deep_matches_crops_of_one_version_not_of_its_inverted_twin(
    tmp_path: Path,
) -> None:
    """ORB sees grey-level structure, which an inverted (or light/dark) version shares: the
    colour guard keeps the crop with its own version."""
    root = tmp_path / "photos"
    root.mkdir()
    picture = _photo("coffee")
    w, h = picture.size
    dark = ImageOps.invert(picture)
    picture.save(root / "light.jpg", quality=92)
    dark.save(root / "dark.jpg", quality=92)
    centre = (round(0.2 * w), round(0.2 * h), round(0.8 * w), round(0.8 * h))
    picture.crop(centre).save(root / "light_crop.jpg", quality=92)
    dark.crop(centre).save(root / "dark_crop.jpg", quality=92)
    groups = _groups(_index_and_report(root, tmp_path / "db.sqlite", deep=True))
    expected = [{"dark.jpg", "dark_crop.jpg"}, {"light.jpg", "light_crop.jpg"}]
    assert sorted(groups, key=sorted) == expected


def test_index_stores_features_once_per_content(store: Store, tmp_path: Path) -> None:
    """One row per content (an exact copy shares it), read back as extracted; a run without
    --features stores none."""
    root = tmp_path / "photos"
    root.mkdir()
    _photo("astronaut").save(root / "a.jpg", quality=92)
    (root / "copy.jpg").write_bytes((root / "a.jpg").read_bytes())
    _photo("coffee").save(root / "b.jpg", quality=92)
    index(store, root, IndexOptions(in_process=True))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(LocalFeaturesRow)).scalar() == 0
    index(store, root, IndexOptions(in_process=True, features=True, rehash=True))
    with store.engine.connect() as conn:
        digests = [bytes(d) for d in conn.execute(select(ImageRow.content_hash)).scalars()]
        assert conn.execute(select(func.count()).select_from(LocalFeaturesRow)).scalar() == 2
    stored = catalog.local_features(store, digests)
    assert len(stored) == 2
    expected = features.extract(_luma_of(root / "a.jpg"))
    found = stored[hashes.content_hash((root / "a.jpg").read_bytes())]
    assert np.array_equal(found.descriptors, expected.descriptors)


def _luma_of(path: Path) -> np.ndarray:
    decoded = decode(path.read_bytes())
    assert isinstance(decoded, DecodedImage)
    return decoded.content.luma


def test_a_stickered_copy_is_verified_against_a_tilted_one() -> None:
    """Stickers change the thumbnail's gradients; many agreeing keypoints outweigh that."""
    picture = _photo("astronaut")
    w, h = picture.size
    stickered = picture.copy()
    draw = ImageDraw.Draw(stickered)
    for fx, fy in ((0.2, 0.2), (0.75, 0.25), (0.5, 0.75), (0.15, 0.8), (0.85, 0.7)):
        x, y = fx * w, fy * h
        draw.ellipse((x - 60, y - 60, x + 60, y + 60), fill=(255, 214, 0))
    found = localmatch.verify(
        features.extract(_luma(stickered)), features.extract(_luma(_tilted(picture, 10)))
    )
    assert found is not None and found.kind == localmatch.TILTED
    assert found.content < localmatch.MIN_CONTENT  # the stickers' edges
    assert found.inliers >= localmatch.STRONG_INLIERS
    assert localmatch.accepted(found)


def _stickered(picture: Image.Image) -> Image.Image:
    """``picture`` with flat stickers over about a tenth of it: discs, a star, a label."""
    out = picture.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    r = 0.08 * w
    discs = (
        ((0.25, 0.2), (40, 110, 240)),
        ((0.78, 0.62), (240, 60, 120)),
        ((0.5, 0.5), (20, 180, 90)),
    )
    for (fx, fy), colour in discs:
        draw.ellipse((fx * w - r, fy * h - r, fx * w + r, fy * h + r), fill=colour)
    cx, cy = 0.62 * w, 0.22 * h
    star = [
        (cx + (r if k % 2 == 0 else r / 2.5) * np.sin(k * np.pi / 5),
         cy - (r if k % 2 == 0 else r / 2.5) * np.cos(k * np.pi / 5))
        for k in range(10)
    ]  # fmt: skip
    draw.polygon(star, fill=(250, 250, 250))
    draw.rectangle((0.18 * w, 0.78 * h, 0.42 * w, 0.88 * h), fill=(250, 210, 40))
    return out


@pytest.mark.slow
def test_report_deep_joins_a_stickered_copy_with_its_picture_and_its_tilted_copy(
    tmp_path: Path,
) -> None:
    """The stickered copy and its picture are one frame with part of it covered; complete
    linkage needs it paired with the tilted copy too, which no stage pairs with it directly:
    its picture's pairs in the cluster are carried over (``localmatch.twin_pairs``)."""
    root = tmp_path / "photos"
    root.mkdir()
    picture = _photo("coffee")
    picture.save(root / "original.jpg", quality=92)
    _stickered(picture).save(root / "stickers.jpg", quality=90)
    _tilted(picture, 20).save(root / "tilted.jpg", quality=92)
    _photo("astronaut").save(root / "other.jpg", quality=92)

    plain = _index_and_report(root, tmp_path / "db.sqlite", deep=False)
    assert not any("tilted.jpg" in g for g in _groups(plain))
    report = _index_and_report(root, tmp_path / "db.sqlite", deep=True)
    assert _groups(report) == [{"original.jpg", "stickers.jpg", "tilted.jpg"}]


@pytest.mark.slow
def test_report_deep_keeps_screenshots_of_different_pictures_apart(tmp_path: Path) -> None:
    """Two screenshots of different pictures in one app's chrome lie whole inside each other
    and agree but for the picture, as a copy under stickers does; their inner pictures
    differ (``match.inner_veto``)."""
    from screens import Chrome, screenshot

    root = tmp_path / "photos"
    root.mkdir()
    chrome = Chrome(width_share=0.45)
    first = screenshot(_photo("astronaut"), chrome)
    other = screenshot(_photo("immunohistochemistry"), chrome)
    first.save(root / "screenshot.jpg", quality=90)
    other.save(root / "other.jpg", quality=90)

    report = _index_and_report(root, tmp_path / "db.sqlite", deep=True)
    assert _groups(report) == []


def test_a_stickered_copy_of_the_same_frame_is_accepted_and_a_plain_copy_left_to_the_hashes() -> (
    None
):
    """Each frame lies whole inside the other, upright: stickers lower the content's agreement
    until their cells are left out; a resized copy agrees all over, as two colour versions
    of one drawing do, and stays the hashes' (their colour guard, complete linkage)."""
    picture = _photo("coffee")
    original = features.extract(_luma(picture))
    stickered = localmatch.verify(original, features.extract(_luma(_stickered(picture))))
    assert stickered is not None and stickered.kind == localmatch.OVERLAID
    assert stickered.content < localmatch.MIN_CONTENT <= stickered.covered
    assert localmatch.accepted(stickered)
    half = picture.resize((picture.width // 2, picture.height // 2))
    resized = localmatch.verify(original, features.extract(_luma(half)))
    assert resized is not None and resized.kind == localmatch.OVERLAID
    assert not localmatch.accepted(resized)


def test_twin_pairs_carry_a_pictures_cluster_pairs_over_to_its_stickered_copy() -> None:
    """1 is the picture, 2 its stickered copy (one frame), 3 a tilted copy of 1, 4 a look-alike
    that the hashes paired with 1 only (no cluster with it): 2 gets 3, not 4."""
    pairs = [
        Pair(1, 2, 10, False, "identity"),
        Pair(1, 3, 20, False, "uncrop", kind=localmatch.TILTED, region=(0.1, 0.1, 0.9, 0.9)),
        Pair(1, 4, 30, False, "rot90"),
    ]
    assert localmatch.twin_pairs(pairs, [(1, 2)]) == [
        Pair(2, 3, 20, False, "uncrop", kind=localmatch.TILTED, region=(0.1, 0.1, 0.9, 0.9))
    ]
    # Read the other way round when the copy's id is on the other side of the partner's.
    carried = localmatch._moved(Pair(1, 2, 20, False, "rot90"), 1, 3)
    assert carried == Pair(2, 3, 20, False, "rot270")
    mirrored = [Pair(1, 2, 10, False, "mirror"), Pair(2, 3, 20, False, "identity")]
    assert localmatch.twin_pairs(mirrored, [(1, 2)]) == []


def test_a_tall_product_on_white_lies_on_a_flat_background_and_a_night_sky_does_not() -> None:
    """The bottle reaches the top and bottom of its frame, so its border ring is only half
    white; a dark sky is left to the uniform-ring test (space photos have stars in it)."""
    bottle = np.full((64, 33), 255, np.uint8)
    bottle[:, 8:25] = 90  # the bottle, top to bottom
    bottle[20:40, 8:25] = 200  # its label
    assert localmatch._on_flat(bottle)
    sky = np.random.default_rng(1).integers(0, 60, (48, 64)).astype(np.uint8)
    assert not localmatch._on_flat(sky)
    assert not localmatch._on_flat(features.extract(_luma(_photo("coffee"))).thumb)


# Run in a process of its own: before the fix it waited forever, and a test process cannot
# be freed from that (its forked worker hangs inside OpenCV).
_DEEP_THEN_INDEX = """
import sys
from pathlib import Path
from click.testing import CliRunner
from PIL import Image
from skimage import data
from dedupdb.cli import cli

base = Path(sys.argv[1])
root = base / "photos"
root.mkdir()
picture = Image.fromarray(data.astronaut()).convert("RGB")
picture.save(root / "a.jpg", quality=92)
picture.rotate(20, expand=True).save(root / "b.jpg", quality=92)
db = str(base / "db.sqlite")
index = ["index", str(root), "--db", db, "-q", "--features", "--workers", "1"]
for args in (index, ["report", "--db", db, "--json", str(base / "r.json"), "-q", "--deep"]):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
Image.fromarray(data.coffee()).convert("RGB").save(root / "c.jpg", quality=92)
result = CliRunner().invoke(cli, index)  # forks a worker from a process that used OpenCV
assert result.exit_code == 0, result.output
print("indexed after the deep report")
"""


@pytest.mark.slow
def test_index_with_features_after_a_deep_report_in_one_process(tmp_path: Path) -> None:
    """From Python, `report --deep` then `index --features` in one process: the report's
    OpenCV calls must not leave a thread pool that the forked index workers wait for."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _DEEP_THEN_INDEX, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "indexed after the deep report" in done.stdout
