"""Keeper choice: one test per rule, the tie-breaks, and invariants of the ranking (the
package's one keeper, ``keeper.rank_clusters``, on one cluster at a time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keeper_oracle import Ranking, deviations

from dedupdb.keeper import Table, rank_clusters
from dedupdb.keeper_rules import (
    WEIGHTS,
    Candidate,
    Ranked,
    Rules,
    fidelity,
    format_rank,
    looks_like_copy,
    matches,
)


def rank(cluster: Sequence[Candidate], rules: Rules | None = None) -> Ranking:
    """The keeper (``keeper.rank_clusters``) of one cluster, best first, with its reasons."""
    members = list(cluster)
    table = Table.from_candidates(members)
    found = rank_clusters(table, [list(range(len(members)))], rules or Rules())
    ranked = [
        Ranked(
            candidate=members[row],
            score=found.score[place],
            parts={name: float(values[place]) for name, values in found.parts.items()},
            rule=0,
            rank=place,
        )
        for place, row in enumerate(found.order.rows.tolist())
    ]
    return Ranking(ranked=ranked, reasons=found.reasons[0])


def jpeg(image_id: int, path: str, **kwargs: object) -> Candidate:
    values: dict[str, object] = {
        "image_id": image_id,
        "path": path,
        "size": 1_000_000,
        "mtime_ns": 1_700_000_000_000_000_000,
        "width": 2000,
        "height": 1500,
        "format": "JPEG",
        "lossless": False,
        "sharpness": 50.0,
        "exif_tags": 10,
    }
    values.update(kwargs)
    return Candidate(**values)  # type: ignore[arg-type]


def keeper_of(*candidates: Candidate, rules: Rules | None = None) -> tuple[int, list[str]]:
    ranking = rank(list(candidates), rules)
    return ranking.keeper.image_id, ranking.reasons


def test_larger_resolution_wins_and_says_so() -> None:
    big = jpeg(2, "/p/b.jpg", width=4000, height=3000, size=3_300_000)
    small = jpeg(1, "/p/a.jpg", width=2000, height=1500, size=900_000)
    keeper, reasons = keeper_of(small, big)
    assert keeper == 2
    assert reasons[0] == "largest: 4000x3000 vs 2000x1500"


def test_added_borders_make_neither_a_larger_copy_nor_an_uncropped_one() -> None:
    # The original PNG, and a JPEG of it with a mat added (more pixels, another aspect ratio).
    original = jpeg(1, "/p/original.png", width=5120, height=2880, format="PNG", lossless=True,
                    size=13_000_000)  # fmt: skip
    matted = jpeg(2, "/p/matted.jpg", width=5940, height=3700, content_width=5120,
                  content_height=2880, size=2_600_000)  # fmt: skip
    keeper, reasons = keeper_of(matted, original)
    assert keeper == 1
    assert "largest" not in " ".join(reasons)  # the same picture inside: not larger
    assert (
        "no added borders: matted.jpg is 5940x3700 with a frame, mat or bars around 5120x2880"
        in reasons
    )
    # Between two JPEGs of the same picture, the one without bars wins on that alone...
    plain = jpeg(3, "/p/plain.jpg", width=5120, height=2880, size=2_400_000)
    keeper, reasons = keeper_of(matted, plain)
    assert keeper == 3
    assert reasons[0].startswith("no added borders")
    # ... and a larger picture still wins, even inside bars, said in its words.
    small = jpeg(4, "/p/small.jpg", width=2560, height=1440, size=900_000)
    keeper, reasons = keeper_of(small, matted)
    assert keeper == 2
    assert "largest: 5120x2880 inside borders vs 2560x1440" in reasons


def test_framing_is_judged_against_a_copy_without_borders() -> None:
    # A letterboxed copy's picture, measured inside the bars at reduced scale, is a few pixels
    # off: the largest picture, with an aspect 1.6 % from the original's. The others' framing
    # is compared with the original's, so a tilted (cropped) copy is not taken for unedited.
    original = jpeg(1, "/p/original.jpg", width=2560, height=1600, size=700_000)
    letterbox = jpeg(2, "/p/letterbox.jpg", width=2560, height=2133, content_width=2560,
                     content_height=1626, size=710_000)  # fmt: skip
    tilted = jpeg(3, "/p/tilted.jpg", width=2490, height=1582, size=690_000)
    assert letterbox.pixels > original.pixels and abs(tilted.aspect - letterbox.aspect) < 0.001
    keeper, reasons = keeper_of(tilted, letterbox, original)
    assert keeper == 1
    assert any(r.startswith("uncropped") for r in reasons), reasons


def test_bordered_is_the_picture_size_differing_from_the_file() -> None:
    assert not jpeg(1, "/p/a.jpg").bordered
    assert not jpeg(1, "/p/a.jpg", content_width=2000, content_height=1500).bordered
    framed = jpeg(1, "/p/a.jpg", content_width=1800, content_height=1500)
    assert framed.bordered
    assert (framed.pixels, round(framed.aspect, 2)) == (1800 * 1500, 1.2)


def test_lossless_png_beats_a_jpeg_of_the_same_picture() -> None:
    png = jpeg(2, "/p/b.png", format="PNG", lossless=True, size=5_000_000)
    jpg = jpeg(1, "/p/a.jpg", size=5_100_000)  # even a slightly larger JPEG file
    keeper, reasons = keeper_of(jpg, png)
    assert keeper == 2
    assert "better format: PNG vs JPEG" in reasons


def test_camera_raw_is_the_original_format() -> None:
    raw = jpeg(2, "/p/IMG_1.dng", format="TIFF", lossless=True)
    jpg = jpeg(1, "/p/IMG_1.jpg")
    keeper, reasons = keeper_of(jpg, raw)
    assert keeper == 2
    assert any(r.startswith("original format: camera raw (DNG) vs JPEG") for r in reasons)
    assert format_rank(raw) > format_rank(jpeg(3, "/p/x.png", format="PNG", lossless=True))


def test_lossy_photo_formats_rank_alike_and_gif_below() -> None:
    # An AVIF or HEIC re-encode of a JPEG holds no more of the picture than the JPEG: the
    # format's name does not tell, the compression part does.
    ranks = {format_rank(jpeg(1, f"/p/a.{f.lower()}", format=f)) for f in
             ("HEIF", "AVIF", "JPEG", "WEBP", "JPEG2000")}  # fmt: skip
    assert ranks == {format_rank(jpeg(2, "/p/a.jpg"))}
    assert format_rank(jpeg(3, "/p/a.gif", format="GIF", lossless=True)) < format_rank(
        jpeg(4, "/p/a.jpg")
    )


def test_less_compressed_copy_wins_at_equal_resolution() -> None:
    hq = jpeg(2, "/p/b.jpg", size=2_400_000)
    lq = jpeg(1, "/p/a.jpg", size=600_000)
    keeper, reasons = keeper_of(lq, hq)
    assert keeper == 2
    assert reasons[0].startswith("less compressed: 2.4 MB vs 600.0 KB (6.4 vs 1.6 bits per pixel)")


def test_file_size_does_not_rank_lossless_copies() -> None:
    """A PNG re-saved with weaker compression is not a better picture than its original."""
    original = jpeg(1, "/p/a/pic.png", format="PNG", lossless=True, size=4_000_000)
    resaved = jpeg(2, "/p/b/pic.png", format="PNG", lossless=True, size=4_600_000)
    ranking = rank([resaved, original])
    assert ranking.ranked[0].parts == ranking.ranked[1].parts
    assert ranking.keeper.image_id == 1
    assert ranking.reasons == ["same quality; first path in alphabetical order"]


def test_largest_names_the_next_largest_copy() -> None:
    big = jpeg(1, "/p/a.jpg", width=4000, height=3000)
    half = jpeg(2, "/p/b.jpg", width=2000, height=1500)
    quarter = jpeg(3, "/p/c.jpg", width=1000, height=750)
    assert rank([quarter, half, big]).reasons[0] == "largest: 4000x3000 vs 2000x1500"


def test_a_copy_blurrier_than_most_loses() -> None:
    sharp = jpeg(2, "/p/b.jpg", sharpness=80.0)
    resaved = jpeg(3, "/p/c.jpg", sharpness=78.0, size=990_000)
    blurred = jpeg(1, "/p/a.jpg", sharpness=20.0)
    keeper, reasons = keeper_of(blurred, sharp, resaved)
    assert keeper == 2
    assert reasons == ["sharper: 80 vs 20"]


def test_being_sharper_than_most_copies_earns_nothing() -> None:
    # Added noise and over-sharpening halos raise the Laplacian's variance as detail does:
    # a copy sharper than the cluster's lower median gains nothing over it.
    original = jpeg(1, "/p/a.jpg", sharpness=0.405)
    noisy = jpeg(2, "/p/b.jpg", sharpness=208.0)
    ranking = rank([noisy, original])
    assert [r.parts["sharpness"] for r in ranking.ranked] == [1.0, 1.0]
    assert not any(reason.startswith("sharper") for reason in ranking.reasons)


def test_original_exif_wins_and_is_named() -> None:
    original = jpeg(
        2, "/p/b.jpg", exif_tags=40, camera="Canon EOS 5D", taken_at="2021-06-01T10:00:00"
    )
    stripped = jpeg(1, "/p/a.jpg", exif_tags=0)
    keeper, reasons = keeper_of(stripped, original)
    assert keeper == 2
    assert reasons == ["original EXIF (Canon EOS 5D, taken 2021-06-01)"]


def test_date_taken_alone_counts() -> None:
    dated = jpeg(2, "/p/b.jpg", taken_at="2020-01-02T03:04:05")
    undated = jpeg(1, "/p/a.jpg")
    keeper, reasons = keeper_of(undated, dated)
    assert keeper == 2
    assert reasons == ["has the date taken (2020-01-02)"]


def test_uncropped_copy_beats_a_crop() -> None:
    full = jpeg(2, "/p/b.jpg", width=4000, height=3000)
    crop = jpeg(1, "/p/a.jpg", width=3000, height=3000, exif_tags=12)
    ranking = rank([crop, full])
    assert ranking.keeper.image_id == 2
    assert "uncropped: 1.33:1 vs 1.00:1 framing" in ranking.reasons
    assert ranking.ranked[1].parts["unedited"] == 0.0


def test_copy_with_edited_colours_loses() -> None:
    original = jpeg(1, "/p/a.jpg", size=900_000, colour_deviation=0.5)
    brightened = jpeg(2, "/p/b.jpg", size=1_000_000, sharpness=60.0, colour_deviation=14.0)
    ranking = rank([brightened, original])
    assert ranking.keeper.image_id == 1
    assert ranking.ranked[1].parts["unedited"] == 0.0
    assert ranking.reasons == [
        "original colours (another copy is brightened, grayscale or retouched)"
    ]


def test_colour_deviation_is_measured_from_the_consensus() -> None:
    base = np.full((4, 4, 3), 100, dtype=np.uint8)
    recompressed = base + 1
    watermarked = base.copy()
    watermarked[3, 3] = 160  # one corner cell changed
    brightened = (base * 1.15).astype(np.uint8)
    found = deviations([base, recompressed, watermarked, brightened, base])
    assert found[0] <= 1.0 and found[4] <= 1.0  # the consensus is the per-cell median
    assert found[1] == pytest.approx(1.0)
    assert found[2] == pytest.approx(59.0)
    assert found[3] == pytest.approx(14.0)
    assert fidelity(jpeg(1, "/p/a.jpg", colour_deviation=found[1])) == 1.0
    assert fidelity(jpeg(1, "/p/a.jpg", colour_deviation=found[3])) == 0.0


def test_rotated_copy_keeps_its_framing() -> None:
    landscape = jpeg(1, "/p/a.jpg", width=4000, height=3000)
    portrait = jpeg(2, "/p/b.jpg", width=3000, height=4000)
    ranking = rank([landscape, portrait])
    assert all(item.parts["unedited"] == 1.0 for item in ranking.ranked)


def test_prefer_rule_beats_quality_and_says_what_it_overrode() -> None:
    best = jpeg(1, "/photos/export/a.jpg", width=4000, height=3000)
    preferred = jpeg(2, "/photos/originals/a.jpg")
    keeper, reasons = keeper_of(best, preferred, rules=Rules(prefer=("originals",)))
    assert keeper == 2
    assert reasons[0] == "in a preferred folder (--prefer originals)"
    assert reasons[-1].startswith("kept by your rule although a.jpg scores higher")


def test_avoid_rule_pushes_a_copy_down() -> None:
    avoided = jpeg(1, "/photos/Downloads/a.jpg", width=4000, height=3000)
    other = jpeg(2, "/photos/2024/a.jpg")
    keeper, reasons = keeper_of(avoided, other, rules=Rules(avoid=("*/Downloads/*",)))
    assert keeper == 2
    assert reasons[0] == "a.jpg scores higher but is in an avoided folder (--avoid */Downloads/*)"


def test_an_avoid_rule_that_changed_nothing_is_not_a_reason() -> None:
    avoided = jpeg(1, "/photos/Downloads/a.jpg", width=1000, height=750)
    best = jpeg(2, "/photos/2024/a.jpg", width=4000, height=3000)
    keeper, reasons = keeper_of(avoided, best, rules=Rules(avoid=("Downloads",)))
    assert keeper == 2
    assert reasons == ["largest: 4000x3000 vs 1000x750"]


def test_prefer_and_avoid_on_one_path_cancel() -> None:
    both = jpeg(1, "/p/keep/trash/a.jpg")
    plain = jpeg(2, "/p/x/b.jpg", width=4000, height=3000)
    keeper, _ = keeper_of(both, plain, rules=Rules(prefer=("keep",), avoid=("trash",)))
    assert keeper == 2


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("/photos/originals/a.jpg", "originals", True),
        ("/photos/originals/a.jpg", "original", False),
        ("/photos/originals/a.jpg", "*/originals/*", True),
        ("/photos/originals/a.jpg", "/photos/*", True),
        ("/photos/2024/a.jpg", "*.jpg", True),
        ("/photos/2024/a.JPG", "*.jpg", False),  # case-sensitive, like the filesystem
        ("/photos/2024/a.jpg", "/other/*", False),
    ],
)
def test_rule_patterns(path: str, pattern: str, expected: bool) -> None:
    assert matches(path, pattern) is expected


# ----------------------------------------------------------------------------- tie-breaks


def exact(image_id: int, path: str, mtime_ns: int = 1_700_000_000_000_000_000) -> Candidate:
    return jpeg(image_id, path, mtime_ns=mtime_ns, content_hash=b"same")


def test_exact_copies_name_that_looks_like_a_copy_loses() -> None:
    keeper, reasons = keeper_of(exact(1, "/p/IMG_1 (1).jpg"), exact(2, "/p/longer/IMG_1.jpg"))
    assert keeper == 2
    assert reasons == ["identical copies; the others' names look like copies"]


def test_exact_copies_shortest_path_wins() -> None:
    keeper, reasons = keeper_of(exact(1, "/p/2024/trip/a.jpg"), exact(2, "/p/2024/a.jpg"))
    assert keeper == 2
    assert reasons == ["identical copies; shortest path"]


def test_exact_copies_same_length_oldest_wins() -> None:
    keeper, reasons = keeper_of(exact(1, "/p/b/a.jpg", 20), exact(2, "/p/c/a.jpg", 10))
    assert keeper == 2
    assert reasons == ["identical copies; oldest file"]


def test_exact_copies_then_path_order_then_id() -> None:
    keeper, reasons = keeper_of(exact(1, "/p/c/a.jpg"), exact(2, "/p/b/a.jpg"))
    assert keeper == 2
    assert reasons == ["identical copies; first path in alphabetical order"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_1 (1).jpg", True),
        ("IMG_1 - Copy.jpg", True),
        ("Copy of IMG_1.jpg", True),
        ("IMG_1_copy.jpg", True),
        ("IMG_1.jpg", False),
        ("copyright.jpg", False),
        ("2019 (summer).jpg", False),
    ],
)
def test_looks_like_copy(name: str, expected: bool) -> None:
    assert looks_like_copy(f"/p/{name}") is expected


def test_single_member_is_its_own_keeper() -> None:
    assert keeper_of(jpeg(1, "/p/a.jpg")) == (1, ["only copy"])


def test_empty_cluster_is_an_error() -> None:
    with pytest.raises(ValueError):
        rank([])


def test_weights_sum_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- invariants

candidates = st.builds(
    jpeg,
    image_id=st.integers(1, 10**6),
    path=st.sampled_from(["/a/x.jpg", "/a/b/x.jpg", "/c/x (1).jpg", "/d/originals/x.png"]),
    size=st.integers(1, 10**8),
    mtime_ns=st.integers(0, 10**18),
    width=st.integers(1, 8000),
    height=st.integers(1, 8000),
    format=st.sampled_from(["JPEG", "PNG", "WEBP", "HEIF", "GIF", "TIFF"]),
    lossless=st.booleans(),
    sharpness=st.floats(0, 1000),
    exif_tags=st.integers(0, 100),
    taken_at=st.none() | st.just("2020-01-01T00:00:00"),
    camera=st.none() | st.just("Canon"),
)


@given(st.lists(candidates, min_size=1, max_size=6, unique_by=lambda c: c.image_id), st.randoms())
def test_ranking_is_deterministic_and_well_formed(members: list[Candidate], rnd: object) -> None:
    rules = Rules(prefer=("originals",))
    ranking = rank(members, rules)
    shuffled = list(members)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = rank(shuffled, rules)
    assert [r.candidate.image_id for r in again.ranked] == [
        r.candidate.image_id for r in ranking.ranked
    ]
    assert again.reasons == ranking.reasons
    assert ranking.keeper in members
    assert ranking.reasons
    for item in ranking.ranked:
        assert 0.0 <= item.score <= 1.0 + 1e-9
        assert set(item.parts) == set(WEIGHTS)


@given(st.lists(candidates, min_size=2, max_size=5, unique_by=lambda c: c.image_id))
def test_strictly_better_copy_is_kept(members: list[Candidate]) -> None:
    best = max(members, key=lambda c: c.image_id)
    boosted = dataclasses.replace(
        best,
        width=9000,
        height=9000,
        size=10**9,
        format="PNG",
        lossless=True,
        sharpness=2000.0,
        exif_tags=200,
        camera="Canon",
        taken_at="2020-01-01T00:00:00",
        path="/z/x.jpg",
    )
    others = [m for m in members if m is not best]
    others = [dataclasses.replace(m, path=m.path.replace("originals", "o")) for m in others]
    assert rank([*others, boosted]).keeper == boosted
