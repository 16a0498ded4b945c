"""Cropped copies: the index stores centre-crop hashes (``hashes.crop_phashes``), the report
finds a crop through them, keeps the uncropped picture in one cluster with its picture's other
copies, and leaves pictures that only share a centre apart."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from PIL import Image
from sqlalchemy import create_engine, select, update

from dedupdb import hashes
from dedupdb.cluster import Cluster, attach_crops, build_clusters
from dedupdb.decode import DecodedImage, decode
from dedupdb.hashes import HashParams
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import (
    CROP,
    CROP_THRESHOLD,
    LEGACY_CROP_THRESHOLD,
    UNCROP,
    MatchOptions,
    Pair,
    crop_candidates,
)
from dedupdb.report import ReportOptions, build_report, find_clusters, find_pairs
from dedupdb.search import Candidates
from dedupdb.store import Store, alembic_config, open_store
from dedupdb.store.catalog import Rows
from dedupdb.store.schema import Image as ImageRow

SEQUENTIAL = IndexOptions(workers=1)


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A deterministic picture with a photo's 1/f spectrum (detail at every scale, as in real
    photos; conftest's smooth blobs have little left once cropped to their middle)."""
    rng = np.random.default_rng(seed)
    width, height = size
    radius = np.hypot(np.fft.rfftfreq(width)[None, :], np.fft.fftfreq(height)[:, None])
    radius[0, 0] = 1.0
    fields = []
    for _ in range(3):
        spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius
        spectrum[0, 0] = 0
        field = np.fft.irfft2(spectrum, s=(height, width))
        fields.append((field - field.mean()) / (field.std() or 1.0))
    luma, cb, cr = fields
    rgb = np.stack([luma + 0.4 * cr, luma - 0.2 * cb - 0.2 * cr, luma + 0.4 * cb], axis=-1)
    return Image.fromarray(np.clip(128 + rgb * 40, 0, 255).astype(np.uint8))


def central(image: Image.Image, side: float) -> Image.Image:
    """The picture cropped by ``side`` of its width and height on every side."""
    w, h = image.size
    return image.crop((round(w * side), round(h * side), round(w * (1 - side)),
                       round(h * (1 - side))))  # fmt: skip


def decoded(image: Image.Image) -> DecodedImage:
    out = io.BytesIO()
    image.save(out, "PNG")
    result = decode(out.getvalue())
    assert isinstance(result, DecodedImage)
    return result.content


def names(store: Store) -> dict[int, str]:
    with store.session() as session:
        return dict(session.execute(select(ImageRow.id, ImageRow.display_path)).all())


def by_names(store: Store, pairs: list[Pair]) -> dict[frozenset[str], Pair]:
    known = names(store)
    return {frozenset((known[p.a], known[p.b])): p for p in pairs}


def window_crop(image: Image.Image, window: tuple[float, float, float, float]) -> Image.Image:
    """The picture cut to a window (left, top, right, bottom as fractions)."""
    w, h = image.size
    left, top, right, bottom = window
    return image.crop((round(w * left), round(h * top), round(w * right), round(h * bottom)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_crop_hash_is_close_to_the_full_frame_hash_of_that_crop(seed: int) -> None:
    picture = photo(seed, (480, 360))
    stored = hashes.crop_phashes(hashes.gray_square(decoded(picture).working_luma))
    others = hashes.crop_phashes(hashes.gray_square(decoded(photo(seed + 50)).working_luma))
    assert len(stored) == len(hashes.CROP_WINDOWS)
    for window, value, stranger in zip(hashes.CROP_WINDOWS, stored, others, strict=True):
        crop = decoded(window_crop(picture, window))
        full = hashes.phash_variants(hashes.gray_square(crop.working_luma))[0]
        assert hashes.hamming(full, value) <= 4, window
        assert hashes.hamming(full, stranger) > 16, window


def test_the_first_windows_are_the_four_centres_stored_before() -> None:
    # Rows indexed before migration 0008 hold four hashes: the first four windows.
    assert hashes.CROP_WINDOWS[:4] == tuple(hashes.centred(s) for s in hashes.CROP_LEVELS)


def test_crop_hashes_scale_with_the_hash_size() -> None:
    gray = hashes.gray_square(decoded(photo(3, (320, 240))).working_luma)
    params = HashParams(16)
    values = hashes.crop_phashes(gray, 16)
    assert len(hashes.pack_variants(values, params)) == len(hashes.CROP_WINDOWS) * 32
    assert all(0 <= v < 1 << 256 for v in values)


def pair(a: int, b: int, transform: str, distance: int = 2) -> Pair:
    return Pair(a, b, distance, False, transform)


def test_a_crop_joins_the_cluster_of_its_picture() -> None:
    picture = Cluster([1, 2, 3], False, 2, [pair(1, 2, "identity"), pair(1, 3, "identity"),
                                            pair(2, 3, "identity")])  # fmt: skip
    crops = [pair(1, 9, CROP), pair(2, 9, CROP), pair(3, 9, CROP, 6)]
    [joined] = attach_crops([picture], crops)
    assert joined.members == [1, 2, 3, 9]
    assert joined.max_distance == 6 and not joined.exact
    assert set(crops) <= set(joined.pairs)


def test_a_look_alike_matching_one_centre_does_not_carry_its_cluster_along() -> None:
    first = Cluster([1, 2, 3], False, 2, [pair(1, 2, "identity"), pair(1, 3, "identity"),
                                          pair(2, 3, "identity")])  # fmt: skip
    second = Cluster([4, 5, 6], False, 2, [pair(4, 5, "identity"), pair(4, 6, "identity"),
                                           pair(5, 6, "identity")])  # fmt: skip
    # 4 is a crop of 1 only: one of the nine (second, first) member pairs
    assert attach_crops([first, second], [pair(1, 4, CROP)]) == [first, second]


def test_a_crop_of_two_pictures_joins_the_one_it_matches_most() -> None:
    picture = Cluster([1, 2], False, 1, [pair(1, 2, "identity", 1)])
    # 9 is a crop of 1 and 2 (one picture, two copies) and of 5 (another picture, same centre)
    crops = [pair(1, 9, CROP), pair(2, 9, CROP), pair(5, 9, CROP, 1)]
    clusters = attach_crops([picture], crops)
    assert [c.members for c in clusters] == [[1, 2, 9]]


def test_crops_of_mixed_shapes_join_a_cluster_half_of_whose_members_they_pair() -> None:
    # 1 is the picture, 2 a copy cut at the top and bottom (it pairs with 1 only). 7-10 are
    # centred copies of 1 (10 too heavily cropped to match 1): 7, 8, 9 pair with 1, none
    # with 2. Half of each side is paired (three of the four crops, one of the two
    # pictures), although only three of the eight combinations are.
    picture = Cluster([1, 2], False, 5, [pair(1, 2, "identity", 5)])
    inside = [pair(a, b, "identity") for a in (7, 8, 9, 10) for b in (7, 8, 9, 10) if a < b]
    crops_of = Cluster([7, 8, 9, 10], False, 2, inside)
    crops = [pair(1, 7, CROP), pair(1, 8, CROP)]
    frames = [pair(1, 9, "identity"), *picture.pairs, *inside]
    joined = attach_crops([picture, crops_of], crops, frames)
    assert [c.members for c in joined] == [[1, 2, 7, 8, 9, 10]]


def test_a_picture_left_alone_joins_its_crops_once_they_are_grouped() -> None:
    # Complete linkage put the copies 2-5 together and left the picture 1 alone (it pairs with
    # 2, 3, 4 by full frame, not with 5). 6 is a crop of 1 and of 2; once 6 joined 2's cluster,
    # that cluster is a crop group of 1: the picture joins it (build_clusters repeats).
    copies = [pair(a, b, "identity", 4) for a in (2, 3, 4, 5) for b in (2, 3, 4, 5) if a < b]
    frames = [*copies, pair(1, 2, "identity", 8), pair(1, 3, "identity", 8),
              pair(1, 4, "identity", 8)]  # fmt: skip
    crops = [pair(1, 6, CROP, 6), pair(2, 6, CROP, 2), pair(3, 6, CROP, 2)]
    assert [c.members for c in build_clusters([*frames, *crops])] == [[1, 2, 3, 4, 5, 6]]


@pytest.fixture
def cropped_library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(31, (640, 480))
    original.save(root / "original.jpg", quality=90)
    original.resize((320, 240)).save(root / "small.jpg", quality=90)
    central(original, 0.15).save(root / "crop15.jpg", quality=95)
    central(original, 0.20).save(root / "crop20.png")  # lossless, yet smaller: not the keeper
    # A different picture around the same centre: it shares the original's middle 60 %.
    other = photo(32, (640, 480))
    other.paste(central(original, 0.2), (128, 96))
    other.save(root / "same-centre.jpg", quality=90)
    photo(33, (640, 480)).save(root / "stranger.jpg", quality=90)
    return root


def test_crops_are_found_and_a_picture_sharing_the_centre_is_not(
    store: Store, cropped_library: Path
) -> None:
    index(store, cropped_library, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    crop15 = pairs[frozenset(("original.jpg", "crop15.jpg"))]
    crop20 = pairs[frozenset(("original.jpg", "crop20.png"))]
    ids = {name: i for i, name in names(store).items()}
    for pair, name in ((crop15, "crop15.jpg"), (crop20, "crop20.png")):
        cropped_is_b = pair.b == ids[name]
        assert pair.transform == (CROP if cropped_is_b else UNCROP)
        assert pair.distance <= CROP_THRESHOLD
    assert frozenset(("original.jpg", "same-centre.jpg")) not in pairs
    assert not any("stranger.jpg" in p for p in pairs)
    verified = by_names(store, find_pairs(store, MatchOptions(ssim=0.6)))  # centres compared
    assert frozenset(("original.jpg", "crop15.jpg")) in verified
    assert frozenset(("original.jpg", "crop20.png")) in verified
    without = by_names(store, find_pairs(store, MatchOptions(crops=False)))
    assert frozenset(("original.jpg", "crop15.jpg")) not in without


@pytest.fixture
def crops_between(tmp_path: Path) -> Path:
    """A picture and copies cut in ways the first four centres (90/80/70/60 %) do not cover:
    between them, beyond them, and to another aspect ratio."""
    root = tmp_path / "between"
    root.mkdir()
    original = photo(61, (640, 480))
    original.save(root / "original.jpg", quality=90)
    cuts = {
        "crop125.jpg": (0.125, 0.125, 0.875, 0.875),
        "crop25.jpg": (0.25, 0.25, 0.75, 0.75),
        "sides15.jpg": (0.15, 0.0, 0.85, 1.0),
        "topbottom15.jpg": (0.0, 0.15, 1.0, 0.85),
    }
    for name, window in cuts.items():
        window_crop(original, window).save(root / name, quality=95)
    photo(62, (640, 480)).save(root / "stranger.jpg", quality=90)
    return root


def test_crops_between_the_centres_and_to_another_aspect_are_found(
    store: Store, crops_between: Path
) -> None:
    index(store, crops_between, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    for name in ("crop125.jpg", "crop25.jpg", "sides15.jpg", "topbottom15.jpg"):
        pair = pairs[frozenset(("original.jpg", name))]
        assert pair.transform in (CROP, UNCROP), name
    assert not any("stranger.jpg" in p for p in pairs)
    [cluster] = find_clusters(store, MatchOptions())
    assert sorted(names(store)[m] for m in cluster.members) == [
        "crop125.jpg", "crop25.jpg", "original.jpg", "sides15.jpg", "topbottom15.jpg"
    ]  # fmt: skip


def test_a_database_indexed_with_four_centres_still_finds_those(
    store: Store, crops_between: Path
) -> None:
    # Rows as an index before migration 0008 stored them: the four centres only.
    window_crop(photo(61, (640, 480)), hashes.centred(0.7)).save(crops_between / "crop15.jpg")
    index(store, crops_between, SEQUENTIAL)
    with store.engine.begin() as conn:
        for image_id, crop_hash, colours in conn.execute(
            select(ImageRow.id, ImageRow.crop_phash, ImageRow.crop_colour)
        ).all():
            conn.execute(
                update(ImageRow)
                .where(ImageRow.id == image_id)
                .values(crop_phash=crop_hash[: 4 * 8], crop_colour=colours[: 4 * 48])
            )
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert pairs[frozenset(("original.jpg", "crop15.jpg"))].transform in (CROP, UNCROP)
    assert frozenset(("original.jpg", "sides15.jpg")) not in pairs


def test_the_uncropped_picture_is_the_keeper(store: Store, cropped_library: Path) -> None:
    index(store, cropped_library, SEQUENTIAL)
    report = build_report(store, ReportOptions())
    [cluster] = [
        c for c in report.clusters if any(m.path.endswith("crop15.jpg") for m in c.members)
    ]
    members = {Path(m.path).name for m in cluster.members}
    assert members == {"original.jpg", "small.jpg", "crop15.jpg", "crop20.png"}
    assert "same-centre.jpg" not in members
    keeper = next(m for m in cluster.members if m.keeper)
    assert Path(keeper.path).name == "original.jpg"
    assert any(p.transform in (CROP, UNCROP) for p in cluster.pairs)


def test_an_upgraded_database_finds_crops_after_a_rehash(tmp_path: Path, db_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(41, (480, 360))
    original.save(root / "original.jpg", quality=90)
    central(original, 0.15).save(root / "crop.jpg", quality=90)
    store = open_store(db_path)
    try:
        index(store, root, SEQUENTIAL)
    finally:
        store.close()
    # Back to the schema before window hashes (the columns are dropped), then up again, as an
    # older database is upgraded when opened: rows indexed before have no crop hashes.
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004")
    finally:
        engine.dispose()
    store = open_store(db_path)
    try:
        with store.session() as session:
            assert set(session.scalars(select(ImageRow.crop_phash))) == {None}
        pair = frozenset(("original.jpg", "crop.jpg"))
        assert pair not in by_names(store, find_pairs(store, MatchOptions()))
        index(store, root, IndexOptions(workers=1, rehash=True))
        with store.session() as session:
            assert None not in set(session.scalars(select(ImageRow.crop_phash)))
        assert by_names(store, find_pairs(store, MatchOptions()))[pair].transform in (CROP, UNCROP)
    finally:
        store.close()


def crop_rows(known_windows: int) -> Rows:
    """Two rows: 0 a picture whose stored windows are ``known_windows`` of the first windows,
    1 a copy whose full frame is 7 bits from picture 0's 70 % centre (window 2)."""
    rng = np.random.default_rng(5)
    windows = len(hashes.CROP_WINDOWS)
    crops = rng.integers(0, 2**63, size=(2, windows, 1), dtype=np.int64).astype(np.uint64)
    full = rng.integers(0, 2**63, size=(2, 8, 1), dtype=np.int64).astype(np.uint64)
    full[1, 0, 0] = crops[0, 2, 0] ^ np.uint64(0b1111111)
    known = np.zeros((2, windows), dtype=bool)
    known[0, :known_windows] = True
    known[1] = True
    return Rows(
        ids=np.array([1, 2]),
        content=[b"a", b"b"],
        low_information=np.zeros(2, dtype=bool),
        hashes=full,
        second=None,
        colour=np.full((2, 4, 4, 3), 120, dtype=np.uint8),
        taken_at=[None, None],
        hash_size=8,
        crops=crops,
        has_crops=known,
    )


def test_rows_indexed_with_four_centres_are_searched_as_they_were() -> None:
    # Seven bits from a centre: beyond the crop threshold (6) for a row with every window,
    # within the four-centre rows' own threshold (8), as before the windows existed.
    none = Candidates(*(np.zeros(0, dtype=np.int64) for _ in range(4)))
    heads = np.array([0, 1])
    assert CROP_THRESHOLD < 7 <= LEGACY_CROP_THRESHOLD
    legacy = crop_candidates(crop_rows(4), heads, none, CROP_THRESHOLD, False, None, 8)
    assert legacy is not None
    pairs, _, a_is_whole, window = legacy
    assert (pairs.a.tolist(), pairs.b.tolist(), a_is_whole.tolist()) == ([0], [1], [True])
    assert (pairs.distance.tolist(), window.tolist()) == ([7], [2])
    full = crop_candidates(crop_rows(len(hashes.CROP_WINDOWS)), heads, none, CROP_THRESHOLD,
                           False, None, 8)  # fmt: skip
    assert full is None


def test_a_crop_that_was_turned_is_found_with_turned_crops(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "turned"
    root.mkdir()
    original = photo(71, (640, 480))
    original.save(root / "original.jpg", quality=90)
    turned = central(original, 0.15).transpose(Image.Transpose.ROTATE_90)
    turned.save(root / "turned.jpg", quality=95)
    central(original, 0.15).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "mirrored.jpg")
    photo(72, (480, 640)).save(root / "stranger.jpg", quality=90)
    index(store, root, SEQUENTIAL)
    upright = by_names(store, find_pairs(store, MatchOptions()))
    assert frozenset(("original.jpg", "turned.jpg")) not in upright
    assert frozenset(("original.jpg", "mirrored.jpg")) not in upright
    found = by_names(store, find_pairs(store, MatchOptions(turned_crops=True)))
    for name in ("turned.jpg", "mirrored.jpg"):
        assert found[frozenset(("original.jpg", name))].transform in (CROP, UNCROP), name
    assert not any("stranger.jpg" in p for p in found)
    report = build_report(store, ReportOptions(turned_crops=True))
    assert report.settings["turned_crops"] is True
    [cluster] = report.clusters
    assert {Path(m.path).name for m in cluster.members} == {
        "original.jpg", "turned.jpg", "mirrored.jpg"
    }  # fmt: skip
