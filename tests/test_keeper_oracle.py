"""The batch ranking equals the per-cluster reference: the oracle's ``rank`` for scores, order and
reasons, the per-cluster colour deviation and keeper distance the report computed before."""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from conftest import photo
from hypothesis import given, settings
from hypothesis import strategies as st
from keeper_oracle import deviations, rank
from PIL import Image

from dedupdb.hashes import DIHEDRAL_NAMES, VARIANTS, hamming
from dedupdb.keeper import (
    Segments,
    Table,
    _raw_name,
    colour_deviations,
    keeper_distances,
    rank_clusters,
    rounded,
)
from dedupdb.keeper_rules import RAW_EXTENSIONS, Candidate, Rules
from dedupdb.match import aligned, dihedral
from dedupdb.signals import dct_sample, quantization_table

NAMES = ("IMG_1", "IMG_1 (1)", "Copy of IMG_1", "IMG_1 - Copy", "b", "IMG_10", "pé~1")
EXTENSIONS = (".jpg", ".png", ".dng", ".CR2", ".heic", ".webp", ".gif", ".tif", "")
FORMATS = ("JPEG", "PNG", "DNG", "HEIC", "WEBP", "GIF", "TIFF", "MPO", "AVIF")
FOLDERS = ("/p/", "/p/keep/", "/p/trash/", "/backup/a/", "/x/")


def _conversion_signals() -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Real quantization tables (qualities 30, 85, 100) and DCT samples (a picture that never
    was a JPEG, and the decode of its quality-85 JPEG): conversions, proven or not, happen."""
    picture = photo(3, (64, 48))
    tables, samples = [], [dct_sample(picture)]
    for quality in (30, 85, 100):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality)
        with Image.open(buffer) as jpeg:
            table = quantization_table(jpeg.quantization)
            assert table is not None
            tables.append(table)
            if quality == 85:
                samples.append(dct_sample(jpeg.convert("RGB")))
    return tuple(tables), tuple(samples)


TABLES, SAMPLES = _conversion_signals()


@st.composite
def candidates(draw: st.DrawFn, image_id: int) -> Candidate:
    # Few distinct values per field, so that ties (and so the tie-breaks) are common.
    return Candidate(
        image_id=image_id,
        path=draw(st.sampled_from(FOLDERS))
        + draw(st.sampled_from(NAMES))
        + draw(st.sampled_from(EXTENSIONS)),
        size=draw(st.sampled_from((0, 1000, 150_000, 1_000_000, 1_003_000, 4_000_000))),
        mtime_ns=draw(st.sampled_from((1, 2, 10**18))),
        width=draw(st.sampled_from((0, 1000, 1500, 1515, 2000, 4000))),
        height=draw(st.sampled_from((0, 750, 1000, 1125, 1500, 3000))),
        format=draw(st.sampled_from(FORMATS)),
        lossless=draw(st.booleans()),
        sharpness=draw(st.sampled_from((0.0, 9.5, 10.0, 55.25, 100.0))),
        exif_tags=draw(st.sampled_from((0, 3, 8, 19, 20, 45))),
        taken_at=draw(st.sampled_from((None, "2020-01-01T10:00:00", "2021-05-06T07:08:09.1"))),
        camera=draw(st.sampled_from((None, "Canon EOS", "X100"))),
        content_hash=draw(st.sampled_from((None, b"a" * 32, b"b" * 32))),
        colour_deviation=draw(st.sampled_from((0.0, 1.5, 2.0, 4.9, 5.0, 9.0, 30.0))),
        # None: no added borders (or a row indexed before they were measured)
        content_width=draw(st.sampled_from((None, 0, 800, 1000, 1500))),
        content_height=draw(st.sampled_from((None, 0, 600, 750, 1125))),
        jpeg_quant=draw(st.sampled_from((None, *TABLES))),
        dct_sample=draw(st.sampled_from((None, *SAMPLES))),
    )


VARIED = ("path", "size", "mtime_ns", "width", "height", "format", "lossless", "sharpness",
          "exif_tags", "taken_at", "camera", "content_hash", "colour_deviation",
          "content_width", "content_height", "jpeg_quant", "dct_sample")  # fmt: skip


@st.composite
def clusters(draw: st.DrawFn) -> list[list[Candidate]]:
    """Clusters whose members are copies of one candidate with a few fields changed (often
    none but the path: ties are what the tie-breaks are for)."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=0, max_size=8))
    out, next_id = [], 1
    for size in sizes:
        ids = draw(st.permutations(range(next_id, next_id + size)))
        base = draw(candidates(0))
        group = []
        for i in ids:
            other = draw(candidates(i))
            changed = draw(st.sets(st.sampled_from(VARIED), max_size=4)) | {"path"}
            group.append(
                dataclasses.replace(
                    base, image_id=i, **{name: getattr(other, name) for name in changed}
                )
            )
        out.append(group)
        next_id += size
    return out


RULES = st.builds(
    Rules,
    prefer=st.sampled_from(((), ("keep",), ("/backup/*",), ("keep", "*.png"))),
    avoid=st.sampled_from(((), ("trash",), ("*copy*",), ("keep",))),
)


@settings(max_examples=80, deadline=None)
@given(clusters(), RULES)
def test_batch_ranking_equals_rank_per_cluster(groups: list[list[Candidate]], rules: Rules) -> None:
    table = Table.from_candidates([c for group in groups for c in group])
    rows, start = [], 0
    for group in groups:
        rows.append(list(range(start, start + len(group))))
        start += len(group)
    batch = rank_clusters(table, rows, rules)
    assert len(batch.reasons) == len(groups)
    for number, group in enumerate(groups):
        reference = rank(group, rules)
        lo, hi = batch.order.starts[number], batch.order.starts[number + 1]
        positions = range(lo, hi)
        ids = [int(table.image_id[batch.order.rows[p]]) for p in positions]
        assert ids == [r.candidate.image_id for r in reference.ranked]
        assert [batch.score[p] for p in positions] == [r.score for r in reference.ranked]
        for p, item in zip(positions, reference.ranked, strict=True):
            assert {name: float(v[p]) for name, v in batch.parts.items()} == item.parts
        assert batch.reasons[number] == reference.reasons


def test_batch_ranking_of_no_clusters() -> None:
    table = Table.from_candidates([])
    batch = rank_clusters(table, [], Rules())
    assert batch.reasons == [] and batch.score == []


# ---------------------------------------------------------------- matching inputs


def _reference_deviations(
    grids: list[np.ndarray],
    variants: list[list[int]],
    members: list[Candidate],
    rotations: bool,
) -> list[float]:
    """What report.py did per cluster before the batch form (one cluster)."""
    if len({c.content_hash for c in members}) == 1:
        return [0.0] * len(members)
    ref = max(range(len(members)), key=lambda i: (members[i].pixels, -members[i].image_id))
    aligned = []
    inverse = {"rot90": "rot270", "rot270": "rot90"}
    for i, grid in enumerate(grids):
        if rotations and i != ref:
            value = variants[i][0]
            k = min(range(VARIANTS), key=lambda k: (hamming(variants[ref][k], value), k))
            name = DIHEDRAL_NAMES[k]
            grid = dihedral(grid, DIHEDRAL_NAMES.index(inverse.get(name, name)))
        aligned.append(grid)
    return deviations(aligned)


def _reference_distance(
    keeper: int, i: int, variants: list[list[int]], members: list[Candidate], rotations: bool
) -> tuple[int, int]:
    if members[i].content_hash == members[keeper].content_hash:
        return 0, 0
    value = variants[i][0]
    ks = range(VARIANTS) if rotations else range(1)
    best = min(ks, key=lambda k: (hamming(variants[keeper][k], value), k))
    return hamming(variants[keeper][best], value), best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=6),
    st.booleans(),
    st.sampled_from((1, 4)),
    st.integers(0, 2**32),
)
def test_colour_deviations_and_keeper_distances_equal_the_per_cluster_form(
    sizes: list[int], rotations: bool, words: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    members = [
        Candidate(
            image_id=int(i) + 1,
            path=f"/p/{i}.jpg",
            size=1,
            mtime_ns=1,
            width=int(rng.choice([100, 200])),
            height=int(rng.choice([100, 200])),
            format="JPEG",
            lossless=False,
            content_hash=bytes([int(rng.integers(0, 2))]) * 32,
        )
        for i in rng.permutation(n)
    ]
    table = Table.from_candidates(members)
    colour = rng.integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8)
    # Few distinct bits, so that distances tie between variants.
    hashes = rng.integers(0, 4, size=(n, VARIANTS, words), dtype=np.uint64)
    bits = 64 * words
    as_int = [
        [int.from_bytes(hashes[i, k].astype(">u8").tobytes(), "big") for k in range(VARIANTS)]
        for i in range(n)
    ]
    seg = Segments.of([list(range(s, s + size)) for s, size in zip(
        np.cumsum([0, *sizes[:-1]]).tolist(), sizes, strict=True)])  # fmt: skip
    found = colour_deviations(seg, colour, hashes, table, rotations).tolist()
    # The batch keeper distances take any member order; use a keeper at each cluster's end.
    ranked_rows = np.concatenate(
        [seg.rows[lo:hi][::-1] for lo, hi in zip(seg.starts[:-1], seg.starts[1:], strict=True)]
    )
    distance, variant = keeper_distances(
        Segments(ranked_rows, seg.starts), hashes, table, rotations
    )
    for lo, hi in zip(seg.starts[:-1].tolist(), seg.starts[1:].tolist(), strict=True):
        rows = list(range(lo, hi))
        expected = _reference_deviations(
            [colour[r] for r in rows], [as_int[r] for r in rows], [members[r] for r in rows],
            rotations,
        )  # fmt: skip
        assert found[lo:hi] == expected
        keeper = hi - 1
        for position, row in zip(range(lo, hi), reversed(rows), strict=True):
            want = _reference_distance(keeper, row, as_int, members, rotations)
            assert (int(distance[position]), int(variant[position])) == want
            assert want[0] <= bits


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(0, 1),
            # Values at and beside decimal halves, where rounding is delicate.
            st.builds(lambda k, d: k / 2 / 10**d, st.integers(-(10**7), 10**7), st.integers(0, 6)),
            st.sampled_from((0.5, 1.5, 2.5, 0.125, 0.00005, 0.30000000000000004, -0.0, 1.7e308)),
        ),
        max_size=50,
    ),
    st.integers(0, 6),
)
def test_rounded_equals_python_round(values: list[float], digits: int) -> None:
    found = rounded(np.array(values, dtype=np.float64), digits)
    expected = [round(v, digits) for v in values]
    assert [float(x).hex() for x in found] == [x.hex() for x in expected]


def test_aligned_turns_each_grid_as_dihedral_does() -> None:
    rng = np.random.default_rng(3)
    for shape in ((4, 4, 3), (32, 32)):
        grids = rng.integers(0, 256, size=(40, *shape), dtype=np.uint8)
        variants = rng.integers(0, VARIANTS, size=40)
        turned = aligned(grids, variants)
        for grid, variant, out in zip(grids, variants.tolist(), turned, strict=True):
            assert np.array_equal(out, dihedral(grid, variant))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["/", ".", "..", "a", "cr2", "CR2", "dng", "İ", "\u212a", ".nef", "x.raw"]),
        max_size=6,
    )
)
def test_raw_name_is_the_extension_test(pieces: list[str]) -> None:
    # The shortcut that skips splitext for most paths answers as Candidate.is_raw's test.
    path = "".join(pieces)
    assert _raw_name(path) == (os.path.splitext(path)[1].lower() in RAW_EXTENSIONS)
