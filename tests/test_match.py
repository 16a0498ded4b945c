"""Pairs from real generated photos indexed into a real SQLite database."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import photo
from hypothesis import given, settings
from hypothesis import strategies as st
from lookalikes import bottle_shot, letter_page
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from sqlalchemy import select, update

from dedupdb.hashes import DIHEDRAL_NAMES, hamming
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import (
    CROP,
    CYANOTYPE,
    DEFAULT_THRESHOLDS,
    SEPIA,
    UNCROP,
    MatchOptions,
    MatchOptionsError,
    Pair,
    colour_guard,
    compare_signatures,
    different_moments,
    match_rows,
    toned_names,
    toned_pairs,
)
from dedupdb.report import find_pairs
from dedupdb.search import all_pairs
from dedupdb.store import Store, catalog
from dedupdb.store.schema import MISSING
from dedupdb.store.schema import Image as ImageRow

SEQUENTIAL = IndexOptions(workers=1)


def ids(store: Store) -> dict[str, int]:
    with store.session() as session:
        return dict(session.execute(select(ImageRow.display_path, ImageRow.id)).all())


def by_names(store: Store, pairs: list[Pair]) -> dict[frozenset[str], Pair]:
    names = {v: k for k, v in ids(store).items()}
    return {frozenset((names[p.a], names[p.b])): p for p in pairs}


@pytest.fixture
def library(tmp_path: Path, store: Store) -> Path:
    """One picture and its copies, plus two different pictures."""
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(1, (400, 300))
    original.save(root / "original.png")
    original.save(root / "reencoded.jpg", quality=60)
    original.resize((200, 150), Image.Resampling.LANCZOS).save(root / "small.jpg", quality=90)
    original.transpose(Image.Transpose.ROTATE_90).save(root / "rot90.jpg", quality=92)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "mirror.jpg", quality=92)
    original.crop((20, 15, 380, 285)).save(root / "cropped.jpg", quality=92)
    (root / "exact.png").write_bytes((root / "original.png").read_bytes())
    photo(2, (400, 300)).save(root / "other.jpg", quality=90)
    photo(3, (300, 400)).save(root / "another.jpg", quality=90)
    index(store, root, SEQUENTIAL)
    return root


COPIES = ("reencoded.jpg", "small.jpg", "rot90.jpg", "mirror.jpg", "cropped.jpg", "exact.png")


def test_copies_pair_with_the_original_and_strangers_do_not(store: Store, library: Path) -> None:
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    for name in COPIES:
        assert frozenset(("original.png", name)) in pairs, name
    for stranger in ("other.jpg", "another.jpg"):
        assert not any(stranger in key for key in pairs), stranger


def test_pairs_are_well_formed_and_sorted(store: Store, library: Path) -> None:
    pairs = find_pairs(store, MatchOptions(second_hash=None))
    assert pairs == sorted(pairs, key=lambda p: (p.a, p.b))
    assert len({(p.a, p.b) for p in pairs}) == len(pairs)
    threshold = DEFAULT_THRESHOLDS["phash"]
    for p in pairs:
        assert p.a < p.b
        assert 0 <= p.distance <= threshold
        assert p.transform in (*DIHEDRAL_NAMES, CROP, UNCROP)


def test_the_second_hash_adds_pairs(store: Store, library: Path) -> None:
    # (crops=False: the crop hashes add pairs of their own, see test_edits.py)
    single = {(p.a, p.b): p for p in find_pairs(store, MatchOptions(second_hash=None, crops=False))}
    both = {
        (p.a, p.b): p for p in find_pairs(store, MatchOptions(second_hash="dhash", crops=False))
    }
    assert set(single) <= set(both)
    for key, p in single.items():
        assert both[key] == p  # the first hash's distance and transform are kept
    dhash_only = {
        (p.a, p.b)
        for p in find_pairs(store, MatchOptions(hash="dhash", second_hash=None, crops=False))
    }
    assert set(both) == set(single) | dhash_only


def test_exact_copies_are_marked_exact(store: Store, library: Path) -> None:
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    exact = pairs[frozenset(("original.png", "exact.png"))]
    assert exact.exact and exact.distance == 0 and exact.transform == "identity"
    assert not pairs[frozenset(("original.png", "small.jpg"))].exact


def test_transform_says_how_b_relates_to_a(store: Store, library: Path) -> None:
    names = ids(store)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    rotated = pairs[frozenset(("original.png", "rot90.jpg"))]
    # PIL's ROTATE_90 turns counter-clockwise, as np.rot90 (hashes.DIHEDRAL[1]) does.
    expected = "rot90" if names["original.png"] < names["rot90.jpg"] else "rot270"
    assert rotated.transform == expected
    assert pairs[frozenset(("original.png", "mirror.jpg"))].transform == "mirror"


def test_no_rotations_misses_the_rotated_copy(store: Store, library: Path) -> None:
    pairs = by_names(store, find_pairs(store, MatchOptions(rotations=False)))
    assert frozenset(("original.png", "rot90.jpg")) not in pairs
    assert frozenset(("original.png", "small.jpg")) in pairs


def test_excluded_pairs_stay_out(store: Store, library: Path) -> None:
    names = ids(store)
    a, b = sorted((names["original.png"], names["small.jpg"]))
    pairs = find_pairs(store, MatchOptions(exclude_pairs=frozenset({(a, b)})))
    assert (a, b) not in {(p.a, p.b) for p in pairs}
    assert pairs  # the others remain


def test_missing_rows_take_no_part(store: Store, library: Path) -> None:
    names = ids(store)
    with store.transaction() as session:
        session.execute(
            update(ImageRow).where(ImageRow.id == names["small.jpg"]).values(status=MISSING)
        )
    pairs = find_pairs(store, MatchOptions())
    assert names["small.jpg"] not in {p.a for p in pairs} | {p.b for p in pairs}


def test_one_file_is_never_its_own_duplicate(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    photo(5).save(root / "a.jpg", quality=90)
    os.link(root / "a.jpg", root / "a-link.jpg")
    (root / "a-twin.jpg").write_bytes((root / "a.jpg").read_bytes())
    photo(5).save(root / "copy.png")
    index(store, root, SEQUENTIAL)
    names = ids(store)
    # Rows that are one file (as a folder indexed under two roots gives): same device+inode.
    with store.transaction() as session:
        device, inode = session.execute(
            select(ImageRow.device, ImageRow.inode).where(ImageRow.id == names["a-twin.jpg"])
        ).one()
        first = min(v for k, v in names.items() if k != "a-twin.jpg" and k.startswith("a"))
        session.execute(
            update(ImageRow).where(ImageRow.id == first).values(device=device, inode=inode)
        )
    pairs = find_pairs(store, MatchOptions())
    members = {p.a for p in pairs} | {p.b for p in pairs}
    keep, hidden = sorted((first, names["a-twin.jpg"]))
    assert hidden not in members
    assert (min(keep, names["copy.png"]), max(keep, names["copy.png"])) in {
        (p.a, p.b) for p in pairs
    }
    for p in pairs:  # whatever the index did with the hard link, no file pairs with itself
        assert os.stat(root / _name(names, p.a)).st_ino != os.stat(root / _name(names, p.b)).st_ino


def _name(names: dict[str, int], image_id: int) -> str:
    return next(k for k, v in names.items() if v == image_id)


def test_low_information_pictures_match_only_exact_copies(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # near-uniform gray with faint noise: the hash is noise
        noise = rng.normal(128, 1.0, (200, 200)).clip(0, 255).astype(np.uint8)
        Image.fromarray(noise).convert("RGB").save(root / f"blank{i}.png")
    (root / "blank-copy.png").write_bytes((root / "blank0.png").read_bytes())
    index(store, root, SEQUENTIAL)
    names = ids(store)
    pairs = find_pairs(store, MatchOptions(threshold=32))
    assert [(p.a, p.b, p.exact) for p in pairs] == [
        (*sorted((names["blank0.png"], names["blank-copy.png"])), True)
    ]


def test_light_dark_and_recoloured_versions_are_not_duplicates(
    tmp_path: Path, store: Store
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(8, (400, 300))
    original.save(root / "original.png")
    ImageEnhance.Brightness(original).enhance(1.15).save(root / "brighter.jpg", quality=92)
    ImageOps.grayscale(original).save(root / "gray.jpg", quality=92)
    ImageEnhance.Brightness(original).enhance(0.4).save(root / "dark.jpg", quality=92)
    r, g, b = original.split()
    Image.merge("RGB", (b, r, g)).save(root / "recoloured.jpg", quality=92)
    index(store, root, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions(threshold=14)))
    assert frozenset(("original.png", "brighter.jpg")) in pairs
    assert frozenset(("original.png", "gray.jpg")) in pairs
    assert frozenset(("original.png", "dark.jpg")) not in pairs
    assert frozenset(("original.png", "recoloured.jpg")) not in pairs
    unguarded = by_names(store, find_pairs(store, MatchOptions(threshold=14, guards=False)))
    assert frozenset(("original.png", "dark.jpg")) in unguarded


def one_hue(seed: int, dark: tuple[int, int, int], light: tuple[int, int, int]) -> Image.Image:
    """A picture in one hue, as most wallpapers are: ``photo(seed)``'s light pattern on a
    ramp from ``dark`` to ``light``."""
    return ImageOps.colorize(ImageOps.grayscale(photo(seed, (400, 300))), black=dark, white=light)


def sepia(image: Image.Image) -> Image.Image:
    """The sepia matrix of photo apps (and of CSS ``sepia()``)."""
    rgb = np.asarray(image, dtype=np.float64)
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(rgb @ matrix.T, 0, 255).astype(np.uint8))


BLUE = ((10, 30, 90), (120, 180, 255))
ORANGE = ((90, 40, 0), (255, 200, 120))


def test_toned_copies_of_a_one_hue_picture_are_paired_and_named(
    tmp_path: Path, store: Store
) -> None:
    """A sepia copy of a blue picture is brown, a cyanotype of an orange one blue: their hues
    differ everywhere, yet they are copies (and said to be)."""
    root = tmp_path / "lib"
    root.mkdir()
    blue, orange = one_hue(21, *BLUE), one_hue(22, *ORANGE)
    blue.save(root / "blue.png")
    sepia(blue).save(root / "blue-sepia.jpg", quality=92)
    orange.save(root / "orange.png")
    gray = ImageOps.grayscale(orange)
    ImageOps.colorize(gray, black=(8, 30, 70), white=(226, 240, 250)).save(
        root / "orange-cyanotype.jpg", quality=92
    )
    index(store, root, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert pairs[frozenset(("blue.png", "blue-sepia.jpg"))].kind == SEPIA
    assert pairs[frozenset(("orange.png", "orange-cyanotype.jpg"))].kind == CYANOTYPE
    assert frozenset(("blue.png", "orange.png")) not in pairs


def test_versions_in_two_designed_colours_stay_apart(tmp_path: Path, store: Store) -> None:
    """The light and dark, or blue and orange, versions of one wallpaper keep their light
    pattern too, but neither looks toned (strong colour): not duplicates. Nor are two product
    shots of one shape in two colours on white, one of them brown. (A product in a brownish
    grey does look like a sepia copy of the other: sixteen cells of colour cannot tell.)"""
    root = tmp_path / "lib"
    root.mkdir()
    one_hue(23, *BLUE).save(root / "blue.png")
    one_hue(23, *ORANGE).save(root / "orange.jpg", quality=92)
    one_hue(23, (60, 20, 0), (220, 150, 60)).save(root / "dark-orange.jpg", quality=92)
    for name, colour in (("brown", (200, 110, 30)), ("blue", (40, 90, 200))):
        shot = Image.new("RGB", (400, 400), (255, 255, 255))
        draw = ImageDraw.Draw(shot)
        draw.rounded_rectangle((110, 90, 290, 330), radius=20, fill=colour)
        draw.ellipse((250, 150, 350, 270), outline=colour, width=22)
        shot.save(root / f"mug-{name}.jpg", quality=92)
    index(store, root, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    unguarded = by_names(store, find_pairs(store, MatchOptions(guards=False)))
    refused = [
        ("blue.png", "orange.jpg"),
        ("blue.png", "dark-orange.jpg"),
        ("mug-brown.jpg", "mug-blue.jpg"),
    ]
    for a, b in refused:
        assert frozenset((a, b)) in unguarded, (a, b)  # the hashes alone join them
        assert frozenset((a, b)) not in pairs, (a, b)


def ramp(dark: tuple[int, int, int], light: tuple[int, int, int]) -> np.ndarray:
    """A (1, 16, 3) colour signature: 16 grey levels of one light pattern on a colour ramp."""
    levels = np.linspace(0.1, 0.95, 16)[[3, 9, 0, 14, 7, 12, 1, 5, 15, 2, 10, 6, 13, 4, 8, 11]]
    low, high = np.asarray(dark, np.float64), np.asarray(light, np.float64)
    return (low + levels[:, None] * (high - low))[None]


def test_which_pictures_look_toned_and_which_pairs_are_named() -> None:
    """Sepia and a cyan-blue toning look toned; a blue in strong colour does not. A pair is
    named after its toned picture only when the other does not look toned too."""
    sepia_sig, cyan = ramp((40, 28, 14), (250, 226, 180)), ramp((20, 40, 70), (200, 225, 245))
    strong_blue = ramp((10, 30, 90), (120, 180, 255))
    compared = compare_signatures(strong_blue, sepia_sig)
    assert compared.toning_a is not None and compared.toning_b is not None
    assert (compared.toning_a.tolist(), compared.toning_b.tolist()) == ([0], [1])
    assert toned_pairs(compared).tolist() == [1] and colour_guard(compared).tolist() == [True]
    assert toned_names(compared, toned_pairs(compared)).tolist() == [1]
    both = compare_signatures(cyan, sepia_sig)
    assert both.toning_a is not None and both.toning_b is not None
    assert (both.toning_a.tolist(), both.toning_b.tolist()) == ([2], [1])
    assert colour_guard(both).tolist() == [True]
    assert toned_names(both, toned_pairs(both)).tolist() == [0]
    # Strong blue and strong orange: neither looks toned, the hues differ: refused.
    orange = compare_signatures(strong_blue, ramp((90, 40, 0), (255, 200, 120)))
    assert toned_pairs(orange).tolist() == [0] and colour_guard(orange).tolist() == [False]


def test_a_toned_pair_must_agree_on_its_thumbnails(tmp_path: Path, store: Store) -> None:
    """Sixteen cells of colour cannot tell two different pictures with one light pattern
    from a toned copy: the thumbnails must agree as well. Given another picture's thumbnail
    for the sepia copy, the pair goes; given none, too."""
    root = tmp_path / "lib"
    root.mkdir()
    blue = one_hue(21, *BLUE)
    blue.save(root / "blue.png")
    sepia(blue).save(root / "blue-sepia.jpg", quality=92)
    photo(24, (400, 300)).save(root / "other.jpg", quality=92)
    index(store, root, SEQUENTIAL)
    names = ids(store)
    rows = catalog.load_rows(store, "phash", "dhash")
    every = rows.ids.tolist()
    thumbs = catalog.thumbnails(store, every)
    crops = catalog.crop_colours(store, every)
    pair = tuple(sorted((names["blue.png"], names["blue-sepia.jpg"])))
    found = {(p.a, p.b) for p in match_rows(rows, MatchOptions(), Held(crops, thumbs))}
    assert pair in found
    swapped = {**thumbs, names["blue-sepia.jpg"]: thumbs[names["other.jpg"]]}
    found = {(p.a, p.b) for p in match_rows(rows, MatchOptions(), Held(crops, swapped))}
    assert pair not in found
    assert pair not in {(p.a, p.b) for p in match_rows(rows, MatchOptions(), None)}


def icon(mark: int) -> Image.Image:
    """A 64x64 app icon: a rounded blue square with a white glyph (``mark`` picks which)."""
    im = Image.new("RGB", (64, 64), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((4, 4, 60, 60), radius=12, fill=(30, 110, 220))
    if mark == 0:
        draw.ellipse((20, 20, 44, 44), fill=(255, 255, 255))
    else:
        draw.rectangle((21, 21, 43, 43), fill=(255, 255, 255))
    return im


def test_a_thumbnail_pairs_with_its_picture_and_icons_do_not_pair(
    tmp_path: Path, store: Store
) -> None:
    """Under 100 px a picture is paired only with a larger one: a 160x90 thumbnail (and a
    second one, of 150x84) with their 1600x900 picture, and with each other through it; two
    different 64x64 icons that hash alike are not paired, a byte-identical copy of one is."""
    root = tmp_path / "lib"
    root.mkdir()
    picture = photo(31, (1600, 900))
    picture.save(root / "picture.jpg", quality=92)
    picture.resize((160, 90), Image.Resampling.LANCZOS).save(root / "thumb.jpg", quality=85)
    picture.resize((150, 84), Image.Resampling.LANCZOS).save(root / "thumb150.png")
    icon(0).save(root / "icon-disc.png")
    icon(1).save(root / "icon-square.png")
    (root / "icon-disc-copy.png").write_bytes((root / "icon-disc.png").read_bytes())
    index(store, root, SEQUENTIAL)
    names = ids(store)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert frozenset(("picture.jpg", "thumb.jpg")) in pairs
    assert frozenset(("picture.jpg", "thumb150.png")) in pairs
    assert frozenset(("thumb.jpg", "thumb150.png")) in pairs
    rows = catalog.load_rows(store, "phash")
    row = {int(i): r for r, i in enumerate(rows.ids.tolist())}
    disc, square = row[names["icon-disc.png"]], row[names["icon-square.png"]]
    distance = hamming(int(rows.hashes[disc, 0, 0]), int(rows.hashes[square, 0, 0]))
    assert distance <= DEFAULT_THRESHOLDS["phash"]  # the hashes alone would join them
    assert frozenset(("icon-disc.png", "icon-square.png")) not in pairs
    assert pairs[frozenset(("icon-disc.png", "icon-disc-copy.png"))].exact
    assert {p for p in pairs if "icon-square.png" in p} == set()


def test_burst_shots_are_not_duplicates(store: Store, library: Path) -> None:
    names = ids(store)
    with store.transaction() as session:
        for name, stamp in (("original.png", "2024-05-01T10:00:00.10"),
                            ("exact.png", "2024-05-01T10:00:00.10"),  # same bytes, same date
                            ("small.jpg", "2024-05-01T10:00:00.10"),
                            ("reencoded.jpg", "2024-05-01T10:00:00.35")):  # fmt: skip
            session.execute(
                update(ImageRow).where(ImageRow.id == names[name]).values(taken_at=stamp)
            )
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert frozenset(("original.png", "small.jpg")) in pairs
    assert frozenset(("original.png", "reencoded.jpg")) not in pairs


def test_ssim_check_drops_dissimilar_pairs(store: Store, library: Path) -> None:
    loose = find_pairs(store, MatchOptions(ssim=-1.0))
    assert loose == find_pairs(store, MatchOptions())
    strict = find_pairs(store, MatchOptions(ssim=1.0))
    assert all(p.exact or p.distance == 0 for p in strict)
    assert len(strict) < len(loose)


@dataclass(frozen=True)
class Held:
    """Evidence held in memory (the ``match.Evidence`` protocol), counting what is asked."""

    crops: dict[int, np.ndarray]
    thumbs: dict[int, np.ndarray]
    fine: dict[int, bytes] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def crop_colours(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        self.asked.append("crop_colours")
        return {i: self.crops[i] for i in ids if i in self.crops}

    def thumbnails(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        self.asked.append("thumbnails")
        return {i: self.thumbs[i] for i in ids if i in self.thumbs}

    def fine_hashes(self, ids: Sequence[int]) -> dict[int, bytes]:
        self.asked.append("fine_hashes")
        return {i: self.fine[i] for i in ids if i in self.fine}


def test_matching_reads_no_database(tmp_path: Path, store: Store, library: Path) -> None:
    """The matcher works on loaded rows and the evidence it is given: with the store closed
    and its file gone, it finds what ``find_pairs`` finds over the store."""
    options = MatchOptions(ssim=0.3, turned_crops=True)
    expected = find_pairs(store, options)
    rows = catalog.load_rows(store, "phash", "dhash")
    every = rows.ids.tolist()
    held = Held(
        catalog.crop_colours(store, every),
        catalog.thumbnails(store, every),
        catalog.fine_hashes(store, every),
    )
    path = store.sqlite_path
    store.close()
    if path is not None:
        path.unlink()
    assert match_rows(rows, options, held) == expected
    assert expected and "thumbnails" in held.asked


def test_different_moments() -> None:
    assert different_moments("2024-05-01T10:00:00.10", "2024-05-01T10:00:00.35")
    assert different_moments("2024-05-01T10:00:00", "2024-05-01T10:00:03")
    assert not different_moments("2024-05-01T10:00:00", "2024-05-01T10:00:00")
    assert not different_moments("2024-05-01T10:00:00", None)
    assert not different_moments("2024-05-01T10:00:00", "2024-05-01T12:00:00")  # time zone
    assert not different_moments("garbage", "2024-05-01T10:00:00")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (MatchOptions(hash="md5"), "unknown hash"),
        (MatchOptions(threshold=-1), "out of range"),
        (MatchOptions(threshold=33), "out of range"),
        (MatchOptions(ssim=2.0), "out of range"),
    ],
)
def test_bad_options_are_refused(store: Store, options: MatchOptions, message: str) -> None:
    with pytest.raises(MatchOptionsError, match=message):
        find_pairs(store, options)


def test_an_out_of_range_threshold_is_refused_with_the_default_as_a_hint(store: Store) -> None:
    with pytest.raises(MatchOptionsError) as refused:
        find_pairs(store, MatchOptions(threshold=99))
    assert refused.value.hint == "use a value from 0 to 32 (default 10 for phash)"


def test_empty_database(store: Store) -> None:
    assert find_pairs(store, MatchOptions()) == []


def variants_strategy() -> st.SearchStrategy[np.ndarray]:
    return st.lists(
        st.lists(st.integers(0, (1 << 64) - 1), min_size=8, max_size=8), min_size=0, max_size=30
    ).map(lambda rows: np.asarray(rows, dtype=np.uint64).reshape(-1, 8, 1))


@settings(max_examples=60, deadline=None)
@given(variants_strategy(), st.integers(0, 40), st.booleans(), st.data())
def test_search_equals_brute_force(
    hashes: np.ndarray, threshold: int, rotations: bool, data: st.DataObject
) -> None:
    # Make some rows rotated near copies of others.
    for i in range(1, len(hashes), 3):
        source = data.draw(st.integers(0, i - 1))
        hashes[i, :, 0] = hashes[source, data.draw(st.permutations(range(8))), 0]
    found = all_pairs(hashes, threshold, rotations)
    columns = (found.a, found.b, found.distance, found.variant)
    got = {(a, b): (d, v) for a, b, d, v in zip(*(c.tolist() for c in columns), strict=True)}
    expected: dict[tuple[int, int], tuple[int, int]] = {}
    values = [[int(x) for x in row[:, 0]] for row in hashes]
    inverse = [0, 3, 2, 1, 4, 5, 6, 7]
    for q in range(len(values)):
        for s in range(len(values)):
            if q == s:
                continue
            for v in range(8) if rotations else (0,):
                d = hamming(values[q][v], values[s][0])
                if d > threshold:
                    continue
                key, var = ((q, s), v) if q < s else ((s, q), inverse[v])
                if key not in expected or (d, var) < expected[key]:
                    expected[key] = (d, var)
    assert got == expected


# ---------------------------------------------------------------- look-alike layouts


@pytest.fixture
def lookalikes(tmp_path: Path, store: Store) -> Path:
    """Pages of one letter template and bottles of one shape with other labels (which pHash
    joins), with true copies of one page and one bottle."""
    root = tmp_path / "lookalikes"
    root.mkdir()
    for seed in (1, 3):
        letter_page(seed).save(root / f"page{seed}.png")
    page = letter_page(1)
    page.save(root / "page1_resaved.jpg", quality=50)
    page.resize((372, 526), Image.Resampling.LANCZOS).save(root / "page1_small.jpg", quality=90)
    page.transpose(Image.Transpose.ROTATE_90).save(root / "page1_turned.png")
    bottle_shot(0, "LIME").save(root / "lime.png")
    bottle_shot(2, "PEAR").save(root / "pear.png")
    bright = ImageEnhance.Brightness(bottle_shot(0, "LIME")).enhance(1.1)
    bright.save(root / "lime_brighter.jpg", quality=92)
    index(store, root, SEQUENTIAL)
    return root


PAGE_COPIES = ("page1_resaved.jpg", "page1_small.jpg", "page1_turned.png")


def test_pages_of_one_template_are_not_paired_and_their_copies_are(
    store: Store, lookalikes: Path
) -> None:
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert frozenset(("page1.png", "page3.png")) not in pairs
    for copy in PAGE_COPIES:
        assert frozenset(("page1.png", copy)) in pairs, copy
    assert pairs[frozenset(("page1.png", "page1_turned.png"))].transform in ("rot90", "rot270")
    # The fine hashes are what tells the pages apart: pHash alone joins them.
    loose = by_names(store, find_pairs(store, MatchOptions(guards=False)))
    assert frozenset(("page1.png", "page3.png")) in loose


def test_product_shots_of_one_outline_are_not_paired_and_a_brighter_copy_is(
    store: Store, lookalikes: Path
) -> None:
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert frozenset(("lime.png", "pear.png")) not in pairs
    assert frozenset(("lime.png", "lime_brighter.jpg")) in pairs
    loose = by_names(store, find_pairs(store, MatchOptions(guards=False)))
    assert frozenset(("lime.png", "pear.png")) in loose


def test_rows_without_a_fine_hash_match_as_before(store: Store, lookalikes: Path) -> None:
    """Rows indexed before the fine hash existed (NULL) are not judged by it."""
    with store.transaction() as session:
        session.execute(update(ImageRow).values(fine_hash=None))
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    assert frozenset(("page1.png", "page3.png")) in pairs
    assert frozenset(("lime.png", "pear.png")) in pairs


def test_the_fine_hashes_are_read_for_candidate_pairs_only(store: Store, lookalikes: Path) -> None:
    rows = catalog.load_rows(store, "phash", "dhash")
    every = rows.ids.tolist()
    held = Held(
        catalog.crop_colours(store, every),
        catalog.thumbnails(store, every),
        catalog.fine_hashes(store, every),
    )
    asked: list[Sequence[int]] = []

    def fine_hashes(wanted: Sequence[int]) -> dict[int, bytes]:
        asked.append(wanted)
        return {i: held.fine[i] for i in wanted if i in held.fine}

    object.__setattr__(held, "fine_hashes", fine_hashes)
    match_rows(rows, MatchOptions(), held)
    candidates = find_pairs(store, MatchOptions(guards=False))
    in_pairs = {i for p in candidates for i in (p.a, p.b)}
    assert asked and all(set(wanted) <= in_pairs for wanted in asked)
