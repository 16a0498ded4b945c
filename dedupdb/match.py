"""The library's rows -> pairs of duplicate images (exact copies, then near duplicates).

``match_rows(rows, options, evidence)`` works on what ``dedupdb index`` stored, loaded by the
report stage (``store.catalog.load_rows``), and never decodes an image nor reads the database:

1. Only rows that are present and share the database's hash size take part. Rows that are one
   file (same device and inode: hard links, or a folder reached through two roots) collapse to the
   lowest id, so a file is never its own duplicate (``store.catalog`` does both).
2. Exact copies (same content hash) pair up first, with distance 0 and ``exact=True``; each group
   of copies is then searched once, through its lowest id.
3. Near duplicates: every pair of pictures within ``threshold`` Hamming bits on the chosen hash,
   found exactly by multi-index hashing (``search.all_pairs``). Rotation and flip aware by
   default: each picture's 8 dihedral variants are looked up among the others' upright hashes,
   and a pair keeps its smallest distance and the transform that gave it. Cropped copies: each
   picture's upright full-frame pHash is also looked up among the others' crop-window pHashes
   (``hashes.CROP_WINDOWS``, within ``CROP_THRESHOLD``), for pairs not found already.
4. Guards drop candidate pairs that users do not call duplicates (see ``Guard`` below):
   low-information pictures (near-uniform) match only their exact copies; two pictures whose
   colours differ in a way no copy or simple edit explains are look-alikes (the light and dark
   versions of a wallpaper), not duplicates; two photos whose EXIF dates differ are two moments
   (burst shots); with ``ssim`` set, the stored 32x32 thumbnails, aligned by the pair's transform,
   must be at least that similar. User decisions (``exclude_pairs``) are honoured last.

The few columns read for some candidate pairs only (crop-window colours, thumbnails) come
through ``Evidence``, which the caller provides (``store.catalog.StoredEvidence``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Protocol

import numpy as np

from .errors import DedupdbError
from .hashes import (
    ALGORITHMS,
    CROP_WINDOWS,
    DIHEDRAL,
    DIHEDRAL_NAMES,
    VARIANTS,
    area_weights,
    centred,
)
from .search import INVERSE, Candidates, MultiIndex, all_pairs, crop_pairs, merge
from .signals import SIGNATURE_GRID
from .store.catalog import LEGACY_WINDOWS, Rows

# The all-pairs search matching runs: (hashes (rows, 8, words), threshold, rotations) ->
# candidate pairs. ``search.all_pairs`` on this machine; ``distributed.search.searcher``
# partitions the same search over a Dask cluster, with the same result.
Searcher = Callable[[np.ndarray, int, bool], Candidates]

# Default thresholds (Hamming bits for 64-bit hashes), chosen on the benchmark corpus (README,
# "Accuracy"; benchmarks/bench_accuracy.py). 256-bit hashes (hash size 16) scale them.
DEFAULT_THRESHOLDS = {"phash": 10, "dhash": 10, "ahash": 8, "whash": 8}
# A picture's full-frame pHash against another's crop-window pHashes (upright). The seventeen
# windows lie 5 % apart (hashes.CROP_WINDOWS), so a crop lies near one of them and a tight
# threshold finds it; a looser one pairs look-alikes through a window (rotated copies lost to
# spurious crop matches) and searches more. README, "Matching accuracy", and
# benchmarks/bench_crops.py measure the choice.
CROP_THRESHOLD = 6
# Rows indexed when only the centre 90/80/70/60 % were stored (``store.catalog.LEGACY_WINDOWS``)
# are searched as they were then: four windows 10 % apart lie farther from a crop, and a
# threshold this tight would miss crops they found (until a --rehash).
LEGACY_CROP_THRESHOLD = 8
# The crop search looks up upright full frames only by default: looking up the 8 variants
# costs about twice the crop search, for cropped copies that were also turned or mirrored,
# which are rare. `--turned-crops` asks.
CROP_ROTATIONS = False


class MatchOptionsError(DedupdbError):
    """A matching option is out of range."""


@dataclass(frozen=True)
class MatchOptions:
    """What counts as a duplicate."""

    hash: str = "phash"  # phash | dhash | ahash | whash
    threshold: int | None = None  # Hamming bits; None = the documented default for the hash
    rotations: bool = True  # compare against the 8 dihedral variants
    ssim: float | None = None  # verify candidate pairs, drop below
    exclude_pairs: frozenset[tuple[int, int]] = frozenset()  # user "not duplicates" (min, max)
    guards: bool = True  # colour and EXIF-date guards against look-alikes and burst shots
    # A second hash whose matches are added (None: only ``hash``): pHash and dHash fail on
    # different edits (crops, watermarks), so together they miss fewer copies.
    second_hash: str | None = "dhash"
    second_threshold: int | None = None  # None = the documented default for the second hash
    # Also match cropped copies: a picture's full-frame pHash against the others' stored
    # crop-window pHashes (hashes.CROP_WINDOWS), within CROP_THRESHOLD bits, upright.
    crops: bool = True
    # Also look the full frame's 7 rotated and mirrored variants up among the windows, so that
    # a copy cropped and then turned or mirrored is found (slower: see CROP_ROTATIONS).
    turned_crops: bool = CROP_ROTATIONS
    # Also the local-feature stage (``localmatch``) over the rows with stored features.
    deep: bool = False
    # Also the pictures shown inside others (``inner``): each one's pHash against the others'
    # full frames, and no full-frame pair of two pictures whose inner pictures differ.
    inner: bool = True

    def resolved_threshold(self, hash_size: int = 8) -> int:
        """The threshold in bits for this hash size (the default scales with the hash's bits)."""
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_THRESHOLDS[self.hash] * (hash_size * hash_size) // 64

    def resolved_second(self, hash_size: int = 8) -> tuple[str, int] | None:
        """The second hash and its threshold, or None when there is none."""
        if self.second_hash is None or self.second_hash == self.hash:
            return None
        if self.second_threshold is not None:
            return self.second_hash, self.second_threshold
        return self.second_hash, DEFAULT_THRESHOLDS[self.second_hash] * hash_size**2 // 64

    def validate(self, hash_size: int = 8) -> None:
        for name in (self.hash, self.second_hash):
            if name is not None and name not in ALGORITHMS:
                raise MatchOptionsError(
                    f"unknown hash {name!r}", f"choose one of {', '.join(ALGORITHMS)}"
                )
        bits = hash_size * hash_size
        for value in (self.threshold, self.second_threshold):
            if value is not None and not 0 <= value <= bits // 2:
                raise MatchOptionsError(
                    f"threshold {value} is out of range for {bits}-bit hashes",
                    f"use a value from 0 to {bits // 2} "
                    f"(default {DEFAULT_THRESHOLDS[self.hash] * bits // 64} for {self.hash})",
                )
        if self.ssim is not None and not -1.0 <= self.ssim <= 1.0:
            raise MatchOptionsError(
                f"SSIM minimum {self.ssim} is out of range", "use a value from -1 to 1, e.g. 0.6"
            )


@dataclass(frozen=True)
class Pair:
    """Two images the matcher calls duplicates."""

    a: int  # image id (a < b)
    b: int
    distance: int  # Hamming bits (0 for exact copies)
    exact: bool  # same content hash
    # "identity", "rot90", ..., from hashes.DIHEDRAL_NAMES (b relative to a); for a pair found
    # by the crop hashes, CROP (b is a centre crop of a) or UNCROP (a is one of b)
    transform: str
    tone: float = 0.0  # mean absolute luma difference of the aligned 4x4 signatures, 0..255
    # A pair found by local features (``localmatch``): what it is in plain words, and the
    # part's region in the whole (left, top, right, bottom fractions); None for the others.
    kind: str | None = None
    region: tuple[float, float, float, float] | None = None


def _joined(
    found: Candidates, colours: ColourComparison, more: Candidates, more_colours: ColourComparison
) -> tuple[Candidates, ColourComparison]:
    """Candidates and their colour comparisons, ``more`` appended."""

    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    joined = Candidates(
        np.concatenate([found.a, more.a]),
        np.concatenate([found.b, more.b]),
        np.concatenate([found.distance, more.distance]),
        np.concatenate([found.variant, more.variant]),
    )
    return joined, ColourComparison(
        np.concatenate([colours.luma_ratio, more_colours.luma_ratio]),
        np.concatenate([colours.hue_degrees, more_colours.hue_degrees]),
        np.concatenate([colours.tone, more_colours.tone]),
        cat(colours.luma_correlation, more_colours.luma_correlation),
        cat(colours.monotone_a, more_colours.monotone_a),
        cat(colours.monotone_b, more_colours.monotone_b),
        cat(colours.toning_a, more_colours.toning_a),
        cat(colours.toning_b, more_colours.toning_b),
    )


# A crop pair's ``Pair.transform``: b is a centre crop of a, or a of b.
CROP = "crop"
UNCROP = "uncrop"


class Evidence(Protocol):
    """What matching reads of a few candidate pairs' images only, by image id (the caller's
    source: ``store.catalog.StoredEvidence``). An image without the value is left out."""

    def crop_colours(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Crop-window colour signatures, (windows, 4, 4, 3) uint8 each."""
        ...

    def thumbnails(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """32x32 grayscale thumbnails, float64."""
        ...

    def fine_hashes(self, ids: Sequence[int]) -> dict[int, bytes]:
        """Stored fine hashes (``finehash``), as stored."""
        ...


def crop_candidates(
    rows: Rows,
    heads: np.ndarray,
    known: Candidates,
    threshold: int,
    rotations: bool = True,
    evidence: Evidence | None = None,
    legacy_threshold: int | None = None,
) -> tuple[Candidates, ColourComparison, np.ndarray, np.ndarray] | None:
    """Pairs where one picture's full frame is within ``threshold`` bits of the other's
    (upright) crop window (``hashes.CROP_WINDOWS``), that ``known`` lacks, with their colours
    compared on the crop: the larger picture's stored window signature
    (``signals.crop_colours``, read through ``evidence`` for these pairs only), or for rows
    indexed without one its 4x4 signature resampled to the window (coarse: a 60 % centre's
    cells straddle the stored cells, and hues then drift by 10-20 degrees on textured
    pictures). With ``rotations``, each full frame's 8 dihedral variants are looked up, so a
    cropped copy that was also turned or mirrored is found too (``search.crop_pairs``). The
    third array says, per pair, whether a is the whole picture (b its crop), the fourth which
    window matched. The windows of rows indexed when only four centres were stored are
    searched within ``legacy_threshold`` bits (default ``threshold``)."""
    assert rows.crops is not None and rows.has_crops is not None
    found = crop_pairs(
        rows.hashes,
        rows.crops,
        rows.has_crops,
        heads,
        threshold,
        rotations,
        legacy_threshold,
        LEGACY_WINDOWS,
    )
    if found is None:
        return None
    n = int(max(heads.max(initial=0), 0)) + 1
    new = ~np.isin(found.a * n + found.b, known.a * n + known.b)
    a, b, level = found.a[new], found.b[new], found.level[new]
    distance, variant = found.distance[new], found.variant[new]
    crop_row = found.crop_row[new]
    if not len(a):
        return None
    # b looks like DIHEDRAL[v](a): v when a is the copy, its inverse when a is the original.
    a_is_crop = crop_row == a
    variant = np.where(a_is_crop, np.asarray(INVERSE)[variant], variant)
    wanted = [int(rows.ids[r]) for r in set(crop_row.tolist())]
    stored = evidence.crop_colours(wanted) if evidence is not None else {}
    signature = np.stack(
        [
            stored[i][k] if (i := int(rows.ids[r])) in stored and k < len(stored[i]) else
            resample_to_window(rows.colour[r], CROP_WINDOWS[k])
            for r, k in zip(crop_row.tolist(), level.tolist(), strict=True)
        ]
    )  # fmt: skip
    cells = SIGNATURE_GRID * SIGNATURE_GRID
    first_sig = rows.colour[a].astype(np.float64)
    second_sig = rows.colour[b].astype(np.float64)
    first_sig[a_is_crop] = signature[a_is_crop]  # the original's grid, resampled to the crop
    second_sig[~a_is_crop] = signature[~a_is_crop]
    pairs = Candidates(a, b, distance, variant)
    first_aligned = aligned(first_sig, variant).reshape(-1, cells, 3)
    colours = compare_signatures(first_aligned, second_sig.reshape(-1, cells, 3))
    return pairs, colours, a_is_crop, level


def resample_to_centre(grid: np.ndarray, scale: float) -> np.ndarray:
    """``resample_to_window`` for the centre ``scale`` of both sides."""
    return resample_to_window(grid, centred(scale))


def resample_to_window(grid: np.ndarray, window: tuple[float, float, float, float]) -> np.ndarray:
    """The (g, g, 3) mean-colour grid of a window (left, top, right, bottom fractions) of a
    picture, estimated from its (g, g, 3) signature as area-weighted means of the cells each
    new cell overlaps."""
    g = grid.shape[0]
    left, top, right, bottom = window
    rows = area_weights(g * top, g * bottom, g, g)
    columns = area_weights(g * left, g * right, g, g)
    out: np.ndarray = np.einsum("ic,jd,cdk->ijk", rows, columns, grid.astype(np.float64))
    return out


def match_rows(
    rows: Rows,
    options: MatchOptions,
    evidence: Evidence | None = None,
    searcher: Searcher = all_pairs,
) -> list[Pair]:
    """Every pair of duplicate images among the rows, sorted by (a, b).

    ``rows``: the library's searchable rows (``store.catalog.load_rows`` with ``options.hash``
    and the second hash of ``options.resolved_second``, if any); ``evidence``: where the crop
    colours and thumbnails of a few rows are read (without it, crop pairs are judged on the
    resampled 4x4 signatures and no pair passes an SSIM check); ``searcher``: where the
    all-pairs search runs (see ``Searcher``).
    """
    options.validate()
    second = options.resolved_second()
    if (rows.second is None) != (second is None):
        raise ValueError("rows loaded without the second hash the options ask for")
    options.validate(rows.hash_size)
    threshold = options.resolved_threshold(rows.hash_size)
    second = options.resolved_second(rows.hash_size)

    # Exact copies: one group per content hash, searched through its first (lowest) row.
    groups: dict[bytes, list[int]] = defaultdict(list)
    for row, digest in enumerate(rows.content):
        groups[digest].append(row)
    pairs: list[Pair] = []
    ids = rows.ids.tolist()  # Python ints: faster to index than the array, one per pair
    for members in groups.values():
        for i, x in enumerate(members):
            for y in members[i + 1 :]:
                pairs.append(Pair(ids[x], ids[y], 0, True, "identity"))
    heads = np.asarray(sorted(m[0] for m in groups.values()), dtype=np.int64)
    heads = heads[~rows.low_information[heads]]
    members_of = {m[0]: m for m in groups.values()}

    found = searcher(rows.hashes[heads], threshold, options.rotations)
    if second is not None and rows.second is not None:
        more = searcher(rows.second[heads], second[1], options.rotations)
        found = merge(found, more, rows.hashes[heads])
    found = Candidates(heads[found.a], heads[found.b], found.distance, found.variant)
    colours = compare_colours(rows, found)
    # What each candidate is: 0 a full-frame match, 1 b is a crop of a, 2 a is a crop of b.
    kind = np.zeros(len(found.a), dtype=np.int8)
    level = np.full(len(found.a), -1, dtype=np.int64)  # the crop level of a crop pair
    cropped: tuple[Candidates, ColourComparison, np.ndarray, np.ndarray] | None = None
    # Look-alike layouts (document pages, product shots): only refused where the guards apply.
    fine = np.ones(len(kind), dtype=bool)
    if options.guards:
        fine = fine_guard(rows, found, kind, level, evidence)
    if options.crops and rows.crops is not None and rows.has_crops is not None:
        # A full-frame pair is not looked for again as a crop; a full-frame candidate the
        # guards refuse is (they compared full frames, and a crop's colours differ from its
        # original's): it is judged again on the crop's colours.
        passing = found.take(colour_guard(colours) & date_guard(rows, found) & fine)
        cropped = crop_candidates(
            rows,
            heads,
            passing if options.guards else found,
            CROP_THRESHOLD * rows.hash_size**2 // 64,
            options.turned_crops,
            evidence,
            LEGACY_CROP_THRESHOLD * rows.hash_size**2 // 64,
        )
    if cropped is not None:
        more, more_colours, a_is_whole, more_level = cropped
        found, colours = _joined(found, colours, more, more_colours)
        more_kind = np.where(a_is_whole, 1, 2).astype(np.int8)
        if options.guards:
            more_fine = fine_guard(rows, more, more_kind, more_level, evidence)
            fine = np.concatenate([fine, more_fine])
        kind = np.concatenate([kind, more_kind])
        level = np.concatenate([level, more_level.astype(np.int64)])
    toning = toned_pairs(colours)
    named = toned_names(colours, toning)
    if options.guards:
        keep = colour_guard(colours) & date_guard(rows, found) & fine
        keep &= toned_structure_agrees(evidence, rows, found, kind, level, toning)
        found, tones, kind, level = found.take(keep), colours.tone[keep], kind[keep], level[keep]
        named = named[keep]
    else:
        tones = colours.tone
    if options.ssim is not None and len(found.a):
        keep = ssim_scores(evidence, rows, found, kind, level) >= options.ssim
        found, tones, kind, level = found.take(keep), tones[keep], kind[keep], level[keep]
        named = named[keep]
    shown = options.inner and options.hash == "phash" and rows.inner is not None
    if shown and len(found.a):
        keep = inner_veto(rows, found)
        found, tones, kind, level = found.take(keep), tones[keep], kind[keep], level[keep]
        named = named[keep]

    for ra, rb, dist, var, tone, k, tn in zip(
        found.a.tolist(),
        found.b.tolist(),
        found.distance.tolist(),
        found.variant.tolist(),
        np.round(tones, 2).tolist(),
        kind.tolist(),
        named.tolist(),
        strict=True,
    ):
        if k:  # a crop pair: which one is the crop, whichever way round the ids come
            name, inverse = (CROP, UNCROP) if k == 1 else (UNCROP, CROP)
        else:
            name, inverse = DIHEDRAL_NAMES[var], DIHEDRAL_NAMES[INVERSE[var]]
        # A toned copy is named; a crop pair keeps no kind (``Pair.kind`` makes it a frame).
        edit = TONINGS.get(tn) if not k else None
        for x in members_of[ra]:
            for y in members_of[rb]:
                ia, ib = ids[x], ids[y]
                if ia < ib:
                    pairs.append(Pair(ia, ib, dist, False, name, tone, edit))
                else:  # b relative to a is the inverse transform
                    pairs.append(Pair(ib, ia, dist, False, inverse, tone, edit))
    if shown:
        pairs.extend(_inner_pairs(rows, heads, found, members_of, options.guards))
    if rows.shorter_side is not None:
        pairs = small_picture_rule(pairs, set(rows.ids[rows.shorter_side < SMALL_PICTURE].tolist()))
    excluded = options.exclude_pairs
    if excluded:
        pairs = [p for p in pairs if (p.a, p.b) not in excluded]
    return sorted(pairs, key=attrgetter("a", "b"))


# ---------------------------------------------------------------- pictures inside others

# What a pair found through an inner picture is, in plain words (as ``localmatch`` says it).
INSIDE_A_SCREENSHOT = "picture inside a screenshot"
# An inner picture's pHash against a full frame's (64-bit hashes; scaled for 256-bit): the
# inner picture is cut from the reduced screenshot, at a few hundred pixels, so its hash lies
# a few bits farther from its picture's than a resized copy's does.
INNER_THRESHOLD = 10
# Two pictures that both show a picture inside are not copies when their inner pictures'
# hashes lie farther apart than this (under the transform that fits them best): screenshots
# of different pictures in one app's chrome agree on the chrome, not on the pictures. (On the
# heavy-edits corpus: inner pictures of one picture 0-4 bits apart, of different ones 18 and
# more.)
INNER_VETO = 12
# A picture that shows one inside and a picture where none was found (a pale picture that
# blends into the page) are copies only when their full frames are this close (64-bit
# hashes): a re-saved copy is, a screenshot of another picture in the same chrome is not.
ONE_SIDED_DISTANCE = 4


def inner_veto(rows: Rows, found: Candidates) -> np.ndarray:
    """False for candidate pairs of two pictures that both show an inner picture, when their
    inner pictures differ (see ``INNER_VETO``), and for pairs where only one does, unless
    their full frames are nearly identical (``ONE_SIDED_DISTANCE``); True for the others."""
    keep = np.ones(len(found.a), dtype=bool)
    shown = rows.inner
    if shown is None:
        return keep
    scale = rows.hash_size**2 // 64
    has_a, has_b = shown.has[found.a], shown.has[found.b]
    one_sided = np.flatnonzero(has_a != has_b)
    keep[one_sided] = found.distance[one_sided] <= ONE_SIDED_DISTANCE * scale
    both = np.flatnonzero(has_a & has_b)
    if not len(both):
        return keep
    first = shown.hashes[found.a[both]]  # (k, 8, words)
    second = shown.hashes[found.b[both], :1]  # (k, 1, words): upright
    distance = np.bitwise_count(first ^ second).sum(axis=2, dtype=np.int64).min(axis=1)
    keep[both] = distance <= INNER_VETO * scale
    return keep


def inner_candidates(rows: Rows, heads: np.ndarray, known: Candidates) -> Candidates:
    """Pairs of ``heads`` (row numbers) where one's inner picture, under one of its 8
    transforms, is within ``INNER_THRESHOLD`` bits of the other's upright full frame, that
    ``known`` lacks, as (a: the picture showing it, b: the picture shown, distance, variant:
    b looks like ``DIHEDRAL[variant]`` of a's inner picture). One per pair: the nearest."""
    shown = rows.inner
    nothing = np.zeros(0, dtype=np.int64)
    if shown is None or len(heads) < 2:
        return Candidates(nothing, nothing, nothing, nothing)
    showing = np.flatnonzero(shown.has[heads])  # positions in heads
    if not len(showing):
        return Candidates(nothing, nothing, nothing, nothing)
    k = len(showing)
    queries = shown.hashes[heads[showing]].transpose(1, 0, 2).reshape(k * VARIANTS, -1)
    owner = np.tile(showing, VARIANTS)
    threshold = INNER_THRESHOLD * rows.hash_size**2 // 64
    found = MultiIndex(rows.hashes[heads, 0, :]).search(queries, threshold, owner=owner)
    a = heads[showing[found.query % k]]
    b = heads[found.stored]
    variant = found.query // k
    n = len(rows.ids) + 1
    low, high = np.minimum(a, b), np.maximum(a, b)
    new = ~np.isin(low * n + high, np.minimum(known.a, known.b) * n + np.maximum(known.a, known.b))
    a, b, distance, variant = a[new], b[new], found.distance[new], variant[new]
    order = np.lexsort((variant, distance, b, a))
    a, b, distance, variant = a[order], b[order], distance[order], variant[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return Candidates(a[first], b[first], distance[first], variant[first])


def _inner_pairs(
    rows: Rows,
    heads: np.ndarray,
    known: Candidates,
    members_of: dict[int, list[int]],
    guards: bool,
) -> list[Pair]:
    """The pairs of ``inner_candidates`` whose colours agree (the inner picture's own
    signature against the picture's, aligned), for every file of each content: the
    picture shown is the part (``CROP`` when it is b), its place in the screenshot the
    region."""
    shown = rows.inner
    found = inner_candidates(rows, heads, known)
    if shown is None or not len(found.a):
        return []
    cells = SIGNATURE_GRID * SIGNATURE_GRID
    colours = compare_signatures(
        aligned(shown.colour[found.a], found.variant).reshape(-1, cells, 3).astype(np.float64),
        rows.colour[found.b].reshape(-1, cells, 3).astype(np.float64),
    )
    keep = (
        colour_guard(colours) & date_guard(rows, found) if guards else np.ones(len(found.a), bool)
    )
    ids = rows.ids.tolist()
    pairs = []
    for screen, picture, distance, tone in zip(
        found.a[keep].tolist(),
        found.b[keep].tolist(),
        found.distance[keep].tolist(),
        np.round(colours.tone[keep], 2).tolist(),
        strict=True,
    ):
        left, top, right, bottom = (round(float(v), 3) for v in shown.box[screen])
        region = (left, top, right, bottom)
        for x in members_of[screen]:
            for y in members_of[picture]:
                ix, iy = ids[x], ids[y]
                a, b, transform = (ix, iy, CROP) if ix < iy else (iy, ix, UNCROP)
                pairs.append(
                    Pair(a, b, distance, False, transform, tone, INSIDE_A_SCREENSHOT, region)
                )
    return pairs


# A picture whose shorter side is under this many pixels (an icon, an emoji, a thumbnail) is
# paired only with a picture at least this large: a thumbnail of 160x90 is a copy of its
# 1600x900 picture, but at 64x64 many different icons hash alike. (Indexing skips pictures
# under ``--min-resolution``, 32 px by default, whose hashes say nothing at all.)
SMALL_PICTURE = 100


def small_picture_rule(pairs: list[Pair], small: set[int]) -> list[Pair]:
    """``pairs`` without those of two small pictures (ids in ``small``), unless they are
    byte-identical or both paired with one larger picture (two thumbnails of one photo: the
    complete linkage needs their pair to cluster them with it)."""
    if not small:
        return pairs
    large_partners: dict[int, set[int]] = defaultdict(set)
    for p in pairs:
        if (p.a in small) != (p.b in small):
            thumb, picture = (p.a, p.b) if p.a in small else (p.b, p.a)
            large_partners[thumb].add(picture)
    return [
        p
        for p in pairs
        if p.exact
        or p.a not in small
        or p.b not in small
        or not large_partners[p.a].isdisjoint(large_partners[p.b])
    ]


# ---------------------------------------------------------------- guards


def dihedral(grid: np.ndarray, variant: int) -> np.ndarray:
    """``hashes.DIHEDRAL[variant]`` on the first two axes of a square grid (e.g. RGB cells)."""
    if variant < 6:
        return DIHEDRAL[variant](grid)
    turned = grid if variant == 6 else np.rot90(grid, 2)
    return np.swapaxes(turned, 0, 1)


def dihedral_stack(grids: np.ndarray, variant: int) -> np.ndarray:
    """``dihedral`` of every grid of a stack (n, h, w, ...) at once (axes 1 and 2)."""
    if variant == 0:
        return grids
    if variant < 4:
        return np.rot90(grids, variant, axes=(1, 2))
    if variant == 4:
        return grids[:, :, ::-1]
    if variant == 5:
        return grids[:, ::-1]
    turned = grids if variant == 6 else np.rot90(grids, 2, axes=(1, 2))
    return np.swapaxes(turned, 1, 2)


def aligned(grids: np.ndarray, variants: np.ndarray) -> np.ndarray:
    """Each square grid ``grids[i]`` (h, w, ...) transformed by ``DIHEDRAL[variants[i]]``."""
    out = np.empty_like(grids)
    for v in range(VARIANTS):
        sel = np.flatnonzero(variants == v)
        if len(sel):
            out[sel] = dihedral_stack(grids[sel], v)
    return out


# RGB -> (luma, blue-difference, red-difference) chroma, ITU-R BT.601 (as JPEG's YCbCr).
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
# A copy may be brightened or darkened (JPEG tone edits, auto-exposure, +15 % in the corpus):
# mean luma ratios up to this are allowed whatever the cells do.
MAX_LUMA_RATIO = 1.5
# A tone edit (gamma, contrast, levels) moves every pixel's luma along one increasing curve, so
# the 16 cells keep their light pattern: their lumas correlate. With that pattern kept
# (correlation at least TONE_CORRELATION), the mean luma may change up to MAX_TONE_RATIO: a
# gamma 0.7 or 1.4 copy. The light and dark versions of a wallpaper are redrawn, not re-toned:
# on both corpora their cells correlate at most 0.95 (mostly below 0.85) when their mean lumas
# differ by more than 1.5x; a copy's at least 0.94 (0.99 for nine in ten).
TONE_CORRELATION = 0.97
MAX_TONE_RATIO = 2.0
# Two coloured pictures whose hues differ by more than this many degrees on average (weighted
# by how colourful each cell is in both) are colour variants, not copies. Copies, resized,
# re-encoded, brightened or watermarked, stay under 8 degrees on the corpus; recoloured
# look-alikes are at 20 and beyond.
MAX_HUE_DEGREES = 12.0
# Below this chroma (on 0..255) a cell has no meaningful hue (gray, or nearly so).
MIN_CHROMA = 4.0
# A toned monochrome copy (sepia, cyanotype) has one hue everywhere: its coloured cells' chroma
# directions agree (the colour-weighted mean of their unit vectors is at least MONOTONE long).
# Like a grayscale copy, it has no hue of its own to compare, when the other picture is truly
# multicoloured (below MULTICOLOURED) and the light pattern is kept. A blue and an orange
# version of a one-hue wallpaper are both monotone and still compared.
MONOTONE = 0.97
MULTICOLOURED = 0.9
# A toned copy (sepia, a sepia duotone, a cyanotype) of any picture, even one of a single hue
# (most wallpapers are blue, a sepia copy of one is brown): besides one hue everywhere, toning
# leaves every cell's chroma modest (at most TONED_MAX_CHROMA on 0..255: sepia copies stay
# under 35, where a wallpaper or product in one strong colour reaches 50-90) and gives the
# hue of a toning: brown to straw yellow (sepia, 135-175 degrees in the Cb-Cr plane, sepia
# itself near 148) or cyan-blue (cyanotype, 300-340, near 325). Two versions of a picture in two
# designed colours are refused as before unless one of them looks exactly like that. And
# toning tints the whole picture: at least TONED_COVERAGE of its cells have a hue or are dark
# (luma under TONED_DARK, where sepia's chroma, about 0.15 of the luma, is too faint to
# measure; sepia copies on the corpora: 15 or 16 of 16), where a product shot on white is
# coloured only where the object is (2-12 of 16), and two products of one shape in two
# colours are two products.
TONED_MAX_CHROMA = 40.0
TONED_COVERAGE = 0.85
TONED_DARK = 40.0
# Sixteen cells say little about structure: two different dark gradients (a wall of blue dots,
# a misty lake at dusk) correlate there as a copy does. A pair that only the toning lets
# through must also agree on the stored 32x32 grey thumbnails (Pearson correlation at least
# this): sepia copies 0.95-1.00 on the corpora, such look-alikes about 0.5.
TONED_THUMB_CORRELATION = 0.9
SEPIA_HUES = (135.0, 175.0)
CYANOTYPE_HUES = (300.0, 340.0)
# How a toned copy is named in the report (``Pair.kind``), by its toning: a cyan-blue one may
# be a cyanotype or an auto-contrast copy of a bluish grey picture, so it says what it looks.
SEPIA = "same picture, sepia"
CYANOTYPE = "same picture, toned blue"
TONINGS = {1: SEPIA, 2: CYANOTYPE}


@dataclass
class ColourComparison:
    """How the aligned 4x4 colour signatures of candidate pairs compare."""

    luma_ratio: np.ndarray  # mean luma of the brighter over the darker (>= 1)
    hue_degrees: np.ndarray  # chroma-weighted mean hue difference where both have colour
    tone: np.ndarray  # mean absolute luma difference per cell (0..255)
    # Pearson correlation of the 16 cell lumas (1 where either is flat: nothing to compare)
    luma_correlation: np.ndarray | None = None
    # How much each picture's coloured cells share one hue (0..1; 0 without colour)
    monotone_a: np.ndarray | None = None
    monotone_b: np.ndarray | None = None
    # Each picture's toning, when it looks like a toned copy (``TONED_MAX_CHROMA``): 1
    # sepia, 2 cyanotype, 0 none (int8)
    toning_a: np.ndarray | None = None
    toning_b: np.ndarray | None = None


def compare_colours(rows: Rows, found: Candidates) -> ColourComparison:
    """The colour signatures of each candidate pair, the first aligned by the transform."""
    cells = SIGNATURE_GRID * SIGNATURE_GRID
    return compare_signatures(
        aligned(rows.colour[found.a], found.variant).reshape(-1, cells, 3).astype(np.float64),
        rows.colour[found.b].reshape(-1, cells, 3).astype(np.float64),
    )


def compare_signatures(first_rgb: np.ndarray, second_rgb: np.ndarray) -> ColourComparison:
    """Compare (n, cells, 3) RGB signatures, the first already aligned to the second."""
    first = first_rgb @ _YCBCR.T
    second = second_rgb @ _YCBCR.T
    luma_a = np.maximum(first[..., 0].mean(axis=1), 1.0)
    luma_b = np.maximum(second[..., 0].mean(axis=1), 1.0)
    chroma_a, chroma_b = first[..., 1:], second[..., 1:]
    sat_a = np.linalg.norm(chroma_a, axis=2)
    sat_b = np.linalg.norm(chroma_b, axis=2)
    cosine = (chroma_a * chroma_b).sum(axis=2) / np.maximum(sat_a * sat_b, 1e-9)
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    weight = np.where((sat_a >= MIN_CHROMA) & (sat_b >= MIN_CHROMA), np.minimum(sat_a, sat_b), 0)
    total = weight.sum(axis=1)
    hue = np.where(total > 0, (angle * weight).sum(axis=1) / np.maximum(total, 1e-9), 0.0)
    return ColourComparison(
        luma_ratio=np.maximum(luma_a / luma_b, luma_b / luma_a),
        hue_degrees=hue,
        tone=np.abs(first[..., 0] - second[..., 0]).mean(axis=1),
        luma_correlation=_correlation(first[..., 0], second[..., 0]),
        monotone_a=(mono_a := _monotone(chroma_a, sat_a)),
        monotone_b=(mono_b := _monotone(chroma_b, sat_b)),
        toning_a=_toning(chroma_a, sat_a, mono_a, first[..., 0]),
        toning_b=_toning(chroma_b, sat_b, mono_b, second[..., 0]),
    )


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (n, cells) arrays; 1 where a row is flat (std < 1)."""
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    sa, sb = np.sqrt((da * da).mean(axis=1)), np.sqrt((db * db).mean(axis=1))
    flat = (sa < 1.0) | (sb < 1.0)
    corr = (da * db).mean(axis=1) / np.maximum(sa * sb, 1e-9)
    return np.where(flat, 1.0, corr)


def _monotone(chroma: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """Length of the colour-weighted mean of the coloured cells' unit chroma vectors."""
    weight = np.where(sat >= MIN_CHROMA, sat, 0.0)
    unit = chroma / np.maximum(sat, 1e-9)[..., None]
    resultant = np.linalg.norm((unit * weight[..., None]).sum(axis=1), axis=1)
    return np.asarray(resultant / np.maximum(weight.sum(axis=1), 1e-9))


def _toning(
    chroma: np.ndarray, sat: np.ndarray, monotone: np.ndarray, luma: np.ndarray
) -> np.ndarray:
    """Per signature: 1 when it looks like a sepia copy, 2 a cyanotype, 0 neither (one hue
    everywhere, modest chroma, a toning's hue; see ``TONED_MAX_CHROMA``)."""
    weight = np.where(sat >= MIN_CHROMA, sat, 0.0)
    unit = chroma / np.maximum(sat, 1e-9)[..., None]
    resultant = (unit * weight[..., None]).sum(axis=1)
    angle = np.degrees(np.arctan2(resultant[:, 1], resultant[:, 0])) % 360.0
    toned = (monotone >= MONOTONE) & (sat.max(axis=1) <= TONED_MAX_CHROMA)
    tinted = (sat >= MIN_CHROMA) | (luma < TONED_DARK)
    toned &= tinted.mean(axis=1) >= TONED_COVERAGE
    sepia = toned & (angle >= SEPIA_HUES[0]) & (angle <= SEPIA_HUES[1])
    cyanotype = toned & (angle >= CYANOTYPE_HUES[0]) & (angle <= CYANOTYPE_HUES[1])
    out: np.ndarray = np.where(sepia, 1, np.where(cyanotype, 2, 0)).astype(np.int8)
    return out


def colour_guard(colours: ColourComparison) -> np.ndarray:
    """True for candidate pairs whose colours agree as those of a copy would.

    Grayscale hashes see a light and a dark, or a blue and an orange version of one picture as
    the same. The stored 4x4 colour signatures, aligned by the pair's transform, tell them
    apart:

    - brightness: the mean luma may change by a factor up to ``MAX_LUMA_RATIO``, or up to
      ``MAX_TONE_RATIO`` when the cells keep their light pattern (a tone curve: gamma,
      contrast, levels);
    - colour: where both pictures have colour, their hues must agree within
      ``MAX_HUE_DEGREES``. A grayscale copy has no hue to compare, so it passes; so does a
      toned monochrome copy (sepia: one hue everywhere) of a multicoloured picture whose light
      pattern it keeps; and a copy that looks toned (``_toning``: sepia or cyanotype, modest
      chroma) of any picture, even one of a single other hue, whose light pattern it keeps.
      Clustering then keeps such copies with the pictures whose tones they match best (see
      cluster.py).
    """
    ratio, hue = colours.luma_ratio, colours.hue_degrees
    n = len(ratio)
    correlation = _or_default(colours.luma_correlation, n, 1.0)
    mono_a = _or_default(colours.monotone_a, n, 0.0)
    mono_b = _or_default(colours.monotone_b, n, 0.0)
    toned = correlation >= TONE_CORRELATION
    brightness = (ratio <= MAX_LUMA_RATIO) | (toned & (ratio <= MAX_TONE_RATIO))
    monochrome = (
        toned
        & (np.maximum(mono_a, mono_b) >= MONOTONE)
        & (np.minimum(mono_a, mono_b) < MULTICOLOURED)
    )
    keep: np.ndarray = brightness & ((hue <= MAX_HUE_DEGREES) | monochrome)
    return keep | (toned_pairs(colours) > 0)


def toned_pairs(colours: ColourComparison) -> np.ndarray:
    """Per candidate pair, how the colour guard passes it as a toned copy of a picture of
    another hue (``_toning``: 1 sepia, 2 cyanotype; 0 not so): the light pattern kept, the
    brightness change a tone curve's, and one of the two looks toned. Matching checks these
    pairs' structure on their thumbnails too (``toned_structure_agrees``) and names them."""
    n = len(colours.luma_ratio)
    if colours.toning_a is None or colours.toning_b is None:
        return np.zeros(n, dtype=np.int8)
    correlation = _or_default(colours.luma_correlation, n, 1.0)
    toned = correlation >= TONE_CORRELATION
    brightness = (colours.luma_ratio <= MAX_LUMA_RATIO) | (
        toned & (colours.luma_ratio <= MAX_TONE_RATIO)
    )
    hue_differs = colours.hue_degrees > MAX_HUE_DEGREES
    toning = np.where(colours.toning_b > 0, colours.toning_b, colours.toning_a)
    out: np.ndarray = np.where(toned & brightness & hue_differs, toning, 0).astype(np.int8)
    return out


def toned_names(colours: ColourComparison, toning: np.ndarray) -> np.ndarray:
    """``toning`` (``toned_pairs``) where one picture of the pair looks toned and the other
    does not, 0 where both do: two low-colour versions of a picture (an auto-contrast copy of
    a bluish grey photo) are paired as toned, but which is the toned copy, if any, is unknown."""
    if colours.toning_a is None or colours.toning_b is None:
        return toning
    one = (colours.toning_a > 0) != (colours.toning_b > 0)
    out: np.ndarray = np.where(one, toning, 0).astype(np.int8)
    return out


def toned_structure_agrees(
    evidence: Evidence | None,
    rows: Rows,
    found: Candidates,
    kind: np.ndarray,
    level: np.ndarray,
    toning: np.ndarray,
) -> np.ndarray:
    """False for the toned pairs (``toning`` > 0) whose stored thumbnails, the first aligned
    by the transform (and cut to the crop window for a crop pair, as ``ssim_scores`` does),
    correlate below ``TONED_THUMB_CORRELATION``, or that have none; True for the others."""
    keep = np.ones(len(found.a), dtype=bool)
    check = np.flatnonzero(toning > 0)
    if not len(check):
        return keep
    rows_needed = set(found.a[check].tolist()) | set(found.b[check].tolist())
    ids = [int(rows.ids[r]) for r in sorted(rows_needed)]
    thumbs = evidence.thumbnails(ids) if evidence is not None else {}
    for i in check.tolist():
        ta = thumbs.get(int(rows.ids[found.a[i]]))
        tb = thumbs.get(int(rows.ids[found.b[i]]))
        if ta is None or tb is None:
            keep[i] = False
            continue
        if kind[i] == 1:
            ta = thumb_window(ta, CROP_WINDOWS[level[i]])
        elif kind[i] == 2:
            tb = thumb_window(tb, CROP_WINDOWS[level[i]])
        first, second = DIHEDRAL[int(found.variant[i])](ta).ravel(), tb.ravel()
        keep[i] = bool(_correlation(first[None], second[None])[0] >= TONED_THUMB_CORRELATION)
    return keep


def _or_default(values: np.ndarray | None, n: int, default: float) -> np.ndarray:
    return np.full(n, default) if values is None else values


def date_guard(rows: Rows, found: Candidates) -> np.ndarray:
    """False for two photos taken at different moments (both EXIF dates known and different)."""
    keep = np.ones(len(found.a), dtype=bool)
    dated = np.fromiter((t is not None for t in rows.taken_at), bool, len(rows.taken_at))
    both = np.flatnonzero(dated[found.a] & dated[found.b])  # an unknown date says nothing
    taken = rows.taken_at
    for i, x, y in zip(both.tolist(), found.a[both].tolist(), found.b[both].tolist(), strict=True):
        keep[i] = not different_moments(taken[x], taken[y])
    return keep


# The fine-hash guard (``fine_guard``). Pictures that look like printed text (text likeness of
# both at least LOOKALIKE_TEXT) or like a product on a flat background (both with at least
# LOOKALIKE_FLAT of the frame at their uniform border's level) are where pHash joins different
# pictures by their layout: such a pair is a copy only if its fine hashes agree, at most
# MAX_FINE_DISAGREEMENT of their clear coefficients on different sides. Measured on the
# heavy-edits corpus's documents and products (benchmarks/make_heavy_corpus.py): copies
# (JPEG 50, 60 %, +10 %, turned) at most 0.042, two pages of one letter template at least
# 0.072; photos are at most 0.33 text-like, documents 0.56 and more.
LOOKALIKE_TEXT = 0.45
LOOKALIKE_FLAT = 0.5
MAX_FINE_DISAGREEMENT = 0.055


def fine_guard(
    rows: Rows,
    found: Candidates,
    kind: np.ndarray,
    level: np.ndarray,
    evidence: Evidence | None,
) -> np.ndarray:
    """False for candidate pairs of look-alike layouts whose fine hashes disagree (see
    ``finehash``): two pages of one document template, two product shots of one outline.

    Judged: pairs of pictures that both look like printed text or both like a product on a
    flat background. A crop pair (``kind`` 1: b is a crop of a, 2: a of b, at the window
    ``CROP_WINDOWS[level]``) is compared on the window: the whole picture's coefficients
    carried to the window (``finehash.window``), over the frequencies that survive. Pictures
    without a stored fine hash (indexed before it existed) are not judged; the comparison runs
    for judged pairs only."""
    from . import finehash  # numpy only; loaded when a report matches

    keep = np.ones(len(found.a), dtype=bool)
    if evidence is None or not len(found.a):
        return keep
    involved = np.union1d(found.a, found.b)
    blobs = evidence.fine_hashes([int(rows.ids[r]) for r in involved])
    text = np.full(len(rows.ids), -1.0)
    flat = np.full(len(rows.ids), -1.0)
    unpacked: dict[int, finehash.FineHash] = {}
    for r in involved.tolist():
        fine = finehash.unpack(blobs.get(int(rows.ids[r])))
        if fine is not None:
            unpacked[r] = fine
            text[r], flat[r] = fine.text, fine.flat
    document = np.minimum(text[found.a], text[found.b]) >= LOOKALIKE_TEXT
    product = np.minimum(flat[found.a], flat[found.b]) >= LOOKALIKE_FLAT
    chosen = np.flatnonzero(document | product)
    for i, x, y, v, k, w in zip(
        chosen.tolist(),
        found.a[chosen].tolist(),
        found.b[chosen].tolist(),
        found.variant[chosen].tolist(),
        kind[chosen].tolist(),
        level[chosen].tolist(),
        strict=True,
    ):
        first, second = unpacked[x].coefficients, unpacked[y].coefficients
        band = finehash.SIDE
        if k:  # b looks like DIHEDRAL[v] of a's window (k 1), or a like b's window
            box = CROP_WINDOWS[w]
            band = finehash.window_band(box)
            if k == 1:
                first = finehash.window(first, box)
            else:
                second = finehash.window(second, box)
        turned = finehash.aligned(first, v)
        keep[i] = finehash.disagreement(turned, second, band) <= MAX_FINE_DISAGREEMENT
    return keep


def different_moments(a: str | None, b: str | None) -> bool:
    """Whether two EXIF dates (ISO, optional fraction) are two shots rather than one.

    Equal dates, or an unknown one, say nothing. A difference of whole quarter hours is taken
    for a time-zone correction of one copy's clock, not another shot.
    """
    if a is None or b is None or a == b:
        return False
    ta, tb = _parse(a), _parse(b)
    if ta is None or tb is None:
        return False
    seconds = abs((ta - tb).total_seconds())
    if seconds == 0:
        return False
    return seconds % 900 != 0


def _parse(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp[:26])
    except ValueError:
        return None


def ssim_scores(
    evidence: Evidence | None,
    rows: Rows,
    found: Candidates,
    kind: np.ndarray | None = None,
    level: np.ndarray | None = None,
) -> np.ndarray:
    """SSIM of each candidate pair's stored thumbnails, the first aligned by the transform.

    For a crop pair (``kind`` 1: b is a crop of a, 2: a of b; ``level`` the matched
    ``CROP_WINDOWS`` index) the whole picture's thumbnail is cut to that window first.
    """
    from skimage.metrics import structural_similarity  # a slow import, needed only here

    n = len(found.a)
    kinds = np.zeros(n, dtype=np.int8) if kind is None else kind
    levels = np.full(n, -1, dtype=np.int64) if level is None else level
    needed = sorted(set(found.a.tolist()) | set(found.b.tolist()))
    ids = [int(rows.ids[r]) for r in needed]
    thumbs = evidence.thumbnails(ids) if evidence is not None else {}
    scores = np.empty(n, dtype=np.float64)
    for i, (x, y, v, k, c) in enumerate(
        zip(
            found.a.tolist(),
            found.b.tolist(),
            found.variant.tolist(),
            kinds.tolist(),
            levels.tolist(),
            strict=True,
        )
    ):
        ta, tb = thumbs.get(int(rows.ids[x])), thumbs.get(int(rows.ids[y]))
        if ta is None or tb is None:
            scores[i] = -1.0
            continue
        if k == 1:
            ta = thumb_window(ta, CROP_WINDOWS[c])
        elif k == 2:
            tb = thumb_window(tb, CROP_WINDOWS[c])
        scores[i] = float(
            structural_similarity(DIHEDRAL[v](ta), tb, data_range=255)  # type: ignore[no-untyped-call]
        )
    return scores


def thumb_centre(thumb: np.ndarray, scale: float) -> np.ndarray:
    """``thumb_window`` for the centre ``scale`` of both sides."""
    return thumb_window(thumb, centred(scale))


def thumb_window(thumb: np.ndarray, window: tuple[float, float, float, float]) -> np.ndarray:
    """A window (left, top, right, bottom fractions) of a thumbnail (float, h x w),
    box-resampled back to its size."""
    from PIL import Image as PILImage

    height, width = thumb.shape
    left, top, right, bottom = window
    picture = PILImage.fromarray(thumb.astype(np.float32))  # mode "F"
    box = (width * left, height * top, width * right, height * bottom)
    part = picture.resize((width, height), PILImage.Resampling.BOX, box=box)
    return np.asarray(part, dtype=np.float64)
