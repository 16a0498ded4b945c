"""Stored hashes -> pairs of duplicate images (exact copies, then near duplicates).

``find_pairs(store, options)`` reads what ``dedupdb index`` stored and never decodes an image:

1. Only rows that are present and share the database's hash size take part. Rows that are one
   file (same device and inode: hard links, or a folder reached through two roots) collapse to the
   lowest id, so a file is never its own duplicate.
2. Exact copies (same content hash) pair up first, with distance 0 and ``exact=True``; each group
   of copies is then searched once, through its lowest id.
3. Near duplicates: every pair of pictures within ``threshold`` Hamming bits on the chosen hash,
   found exactly by multi-index hashing (``bktree.MultiIndex``). Rotation and flip aware by
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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter

import numpy as np
from sqlalchemy import select

from .bktree import WORD_BITS, Matches, MultiIndex
from .errors import DedupdbError
from .hashes import (
    ALGORITHMS,
    CROP_LEVELS,
    CROP_WINDOWS,
    DIHEDRAL,
    DIHEDRAL_NAMES,
    VARIANTS,
    HashParams,
    area_weights,
    centred,
)
from .signals import SIGNATURE_GRID, THUMB_SIZE
from .store import HASH_PARAMS_KEY, Store, driver_rows
from .store.schema import PRESENT, Image

# Default thresholds (Hamming bits for 64-bit hashes), measured on the benchmark corpus: see
# README "Accuracy" and benchmarks/bench_accuracy.py. 256-bit hashes (hash size 16) scale them.
DEFAULT_THRESHOLDS = {"phash": 10, "dhash": 10, "ahash": 8, "whash": 8}
# A picture's full-frame pHash against another's crop-window pHashes (upright). With four
# centres (90/80/70/60 %), measured with benchmarks/make_heldout.py's corpus (README, "Matching
# accuracy"): held-out F1 0.790 at 8 bits, 0.808 at 10, 0.815 at 12, 0.827 at 14; the public
# corpus lost rotated copies to spurious crop matches at 14; once crop pairs joined their
# picture's cluster, 8 found the same crops as 10. With the seventeen windows 5 % apart
# (hashes.CROP_WINDOWS) a crop lies nearer one of them: 6 bits find what 8 did on the public
# (F1 0.990 at both) and held-out corpora (0.909 against 0.912: one tilt, one mat), and on the
# crop probe (benchmarks/make_crop_probe.py) every centred and aspect crop but one 25 % crop,
# while the search over four times the windows costs 0.97 CPU s at 100,000 pictures, against
# 2.04 s at 8 bits and 0.56 s for the four centres at 8 (benchmarks/bench_crops.py).
CROP_THRESHOLD = 6
# Rows indexed when only the centre 90/80/70/60 % were stored hold these first windows, and are
# searched as they were then, within 8 bits: at 6 those four centres, 10 % apart, miss more
# (public F1 0.988 instead of 0.990, held-out 0.906 instead of 0.909, until a --rehash).
LEGACY_WINDOWS = len(CROP_LEVELS)
LEGACY_CROP_THRESHOLD = 8
# The crop search looks up upright full frames only by default: with the 8 variants it costs
# 1.9x more (seventeen windows at 6 bits, 100,000 pictures: 2.5 CPU s instead of 1.3,
# benchmarks/bench_crops.py), for cropped copies that were also turned or mirrored (crop probe:
# a 10 % crop turned 90 degrees paired with its picture 0.36 -> 0.97). `--turned-crops` asks.
CROP_ROTATIONS = False

# The index of each dihedral transform's inverse (rot90 and rot270 undo each other; the others
# are their own inverse).
_INVERSE = [
    DIHEDRAL_NAMES.index(name)
    for name in (
        "identity",
        "rot270",
        "rot180",
        "rot90",
        "mirror",
        "flip",
        "transpose",
        "transverse",
    )
]


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
    # a copy cropped and then turned or mirrored is found: 1.9x the crop search (CROP_ROTATIONS).
    turned_crops: bool = CROP_ROTATIONS
    # Also the local-feature stage (``localmatch``) over the rows with stored features.
    deep: bool = False

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


@dataclass
class Candidates:
    """Image pairs (as row numbers into ``Rows``) within the threshold, before the guards."""

    a: np.ndarray  # int64 rows, a < b
    b: np.ndarray
    distance: np.ndarray  # int64 bits
    variant: np.ndarray  # int64 index into DIHEDRAL: b looks like DIHEDRAL[variant](a)

    def take(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.a[keep], self.b[keep], self.distance[keep], self.variant[keep])


@dataclass
class Rows:
    """The columns matching needs, one entry per searchable image, sorted by id."""

    ids: np.ndarray  # int64 image ids
    content: list[bytes]  # content hashes
    low_information: np.ndarray  # bool
    hashes: np.ndarray  # (n, 8, words) uint64: the chosen hash's 8 dihedral variants
    second: np.ndarray | None  # the same for the second hash, when one is asked for
    colour: np.ndarray  # (n, 4, 4, 3) uint8 RGB signature
    taken_at: list[str | None]
    hash_size: int
    extra_same_file: dict[int, list[int]] = field(default_factory=dict)  # id -> hidden ids
    # (n, len(CROP_WINDOWS), words) uint64 crop-window pHashes; has_crops (n, windows) False
    # where unknown (rows indexed before: none, or the first four of a four-window row)
    crops: np.ndarray | None = None
    has_crops: np.ndarray | None = None


def load_rows(store: Store, algorithm: str, second: str | None = None) -> Rows:
    """The present images of the database's hash size, one per file (lowest id wins)."""
    stored = store.get_setting(HASH_PARAMS_KEY)
    params = HashParams(int(stored["hash_size"]) if stored else 8)
    column = getattr(Image, algorithm)
    second_column = getattr(Image, second or algorithm)
    query = (
        select(
            Image.id,
            Image.device,
            Image.inode,
            Image.content_hash,
            Image.low_information,
            column,
            Image.colour,
            Image.taken_at,
            second_column,
            Image.crop_phash,
        )
        .where(Image.status == PRESENT, Image.hash_size == params.hash_size)
        .order_by(Image.id)
    )
    with store.engine.connect() as conn:  # the driver's tuples: no ORM or row objects
        records = driver_rows(conn, query)
    n_all = len(records)
    columns = list(zip(*records, strict=True)) if records else [()] * 10
    ids_all = np.asarray(columns[0], dtype=np.int64)
    # One file reached twice (hard links, overlapping roots): keep its lowest id. Inode 0
    # means a filesystem without stable inode numbers: no merging there.
    device = np.asarray(columns[1], dtype=np.int64)
    inode = np.asarray(columns[2], dtype=np.int64)
    keep = np.ones(n_all, dtype=bool)
    hidden: dict[int, list[int]] = {}
    if n_all:
        order = np.lexsort((ids_all, inode, device))
        same = (device[order][1:] == device[order][:-1]) & (inode[order][1:] == inode[order][:-1])
        same &= inode[order][1:] != 0
        starts = np.concatenate([[True], ~same])  # first row of each run of one file
        first_row = order[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        later = ~starts
        keep[order[later]] = False
        for row, first in zip(order[later].tolist(), first_row[later].tolist(), strict=True):
            hidden.setdefault(int(ids_all[first]), []).append(int(ids_all[row]))
    kept = np.flatnonzero(keep)
    n = len(kept)
    words = params.bits // WORD_BITS
    blob_size = VARIANTS * params.nbytes

    def variants(blobs_of: Sequence[bytes], name: str) -> np.ndarray:
        blobs = b"".join(blobs_of[i] for i in kept.tolist())
        if len(blobs) != n * blob_size:
            raise DedupdbError(
                f"the database holds {name} values of an unexpected size",
                "re-index with `dedupdb index --rehash`",
            )
        return np.frombuffer(blobs, dtype=">u8").astype(np.uint64).reshape(n, VARIANTS, words)

    hashes = variants(columns[5], algorithm)
    crops, has_crops = _crop_hashes([columns[9][i] for i in kept.tolist()], params)
    colour_size = SIGNATURE_GRID * SIGNATURE_GRID * 3
    colour_blobs = columns[6]
    colours = b"".join(
        c if len(c) == colour_size else bytes(colour_size)
        for c in (colour_blobs[i] for i in kept.tolist())
    )
    kept_list = kept.tolist()
    return Rows(
        ids=ids_all[kept],
        content=[columns[3][i] for i in kept_list],
        low_information=np.asarray(columns[4], dtype=bool)[kept] if n_all else np.zeros(0, bool),
        hashes=hashes,
        second=variants(columns[8], second) if second else None,
        crops=crops,
        has_crops=has_crops,
        colour=np.frombuffer(colours, dtype=np.uint8).reshape(n, SIGNATURE_GRID, SIGNATURE_GRID, 3),
        taken_at=[columns[7][i] for i in kept_list],
        hash_size=params.hash_size,
        extra_same_file=hidden,
    )


def _crop_hashes(
    blobs: Sequence[bytes | None], params: HashParams
) -> tuple[np.ndarray, np.ndarray]:
    """The stored crop-window hashes as (n, windows, words) uint64, and which are known: all
    of a row with every window, the first four of a row indexed when only the centre 90/80/70/60
    % were stored (``hashes.CROP_LEVELS``, the first four windows), none of a row without."""
    windows, words, nbytes = len(CROP_WINDOWS), params.bits // WORD_BITS, params.nbytes
    size = windows * nbytes
    nothing = bytes(size)
    counts = []  # known windows per row
    padded = []
    for blob in blobs:
        count = len(blob) // nbytes if blob is not None else 0
        if blob is None or len(blob) % nbytes or count not in (LEGACY_WINDOWS, windows):
            counts.append(0)
            padded.append(nothing)
        else:
            counts.append(count)
            padded.append(blob if count == windows else blob + bytes(size - len(blob)))
    known = np.arange(windows) < np.asarray(counts, dtype=np.int64).reshape(-1, 1)
    hashes = np.frombuffer(b"".join(padded), dtype=">u8").astype(np.uint64)
    return hashes.reshape(len(blobs), windows, words), known


def search(hashes: np.ndarray, threshold: int, rotations: bool) -> Candidates:
    """Every pair of rows within ``threshold`` bits, with its best dihedral variant.

    ``hashes`` is ``(n, 8, words)``; row ``q``'s variant ``v`` is looked up among every other
    row's upright hash, so a pair may be found several ways: it keeps the smallest distance,
    then the lowest variant (the identity first).
    """
    n = len(hashes)
    index = MultiIndex(hashes[:, 0, :])
    same = index.search(None, threshold)
    parts_a, parts_b = [same.query], [same.stored]
    parts_d, parts_v = [same.distance], [np.zeros(len(same), dtype=np.int64)]
    if rotations and n > 1:
        queries = hashes[:, 1:, :].transpose(1, 0, 2).reshape(-1, hashes.shape[2])
        owner = np.tile(np.arange(n, dtype=np.int64), VARIANTS - 1)
        found = index.search(queries, threshold, owner=owner)
        q = found.query % n
        v = found.query // n + 1
        s = found.stored
        # s looks like DIHEDRAL[v](q). As (a, b) with a < b: if q < s, b = DIHEDRAL[v](a);
        # otherwise a = DIHEDRAL[v](b), so b = inverse(v)(a).
        forward = q < s
        parts_a.append(np.where(forward, q, s))
        parts_b.append(np.where(forward, s, q))
        parts_d.append(found.distance)
        parts_v.append(np.where(forward, v, np.asarray(_INVERSE)[v]))
    a, b = np.concatenate(parts_a), np.concatenate(parts_b)
    d, v = np.concatenate(parts_d), np.concatenate(parts_v)
    order = np.lexsort((v, d, b, a))
    a, b, d, v = a[order], b[order], d[order], v[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return Candidates(a[first], b[first], d[first], v[first])


def merge(found: Candidates, more: Candidates, hashes: np.ndarray) -> Candidates:
    """``found`` plus the pairs of ``more`` it lacks, with their distance on ``hashes`` (the
    first hash) under the transform that matched."""
    n = len(hashes) + 1
    known = found.a * n + found.b
    new = ~np.isin(more.a * n + more.b, known)
    extra = more.take(new)
    diff = hashes[extra.a, extra.variant, :] ^ hashes[extra.b, 0, :]
    distance = np.bitwise_count(diff).sum(axis=1, dtype=np.int64)
    a = np.concatenate([found.a, extra.a])
    b = np.concatenate([found.b, extra.b])
    order = np.lexsort((b, a))
    return Candidates(
        a[order],
        b[order],
        np.concatenate([found.distance, distance])[order],
        np.concatenate([found.variant, extra.variant])[order],
    )


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
    )


# A crop pair's ``Pair.transform``: b is a centre crop of a, or a of b.
CROP = "crop"
UNCROP = "uncrop"


def crop_candidates(
    rows: Rows,
    heads: np.ndarray,
    known: Candidates,
    threshold: int,
    rotations: bool = True,
    store: Store | None = None,
    legacy_threshold: int | None = None,
) -> tuple[Candidates, ColourComparison, np.ndarray, np.ndarray] | None:
    """Pairs where one picture's full frame is within ``threshold`` bits of the other's
    (upright) crop window (``hashes.CROP_WINDOWS``), that ``known`` lacks, with their colours
    compared on the crop: the larger picture's stored window signature
    (``signals.crop_colours``, read from ``store`` for these pairs only), or for rows indexed
    without one its 4x4 signature resampled to the window (coarse: a 60 % centre's cells
    straddle the stored cells, and hues then drift by 10-20 degrees on textured pictures). With
    ``rotations``, each full frame's 8 dihedral variants are looked up, so a cropped copy that
    was also turned or mirrored is found too. The third array says, per pair, whether a is
    the whole picture (b its crop), the fourth which window matched. The windows of rows
    indexed when only four centres were stored are searched within ``legacy_threshold`` bits
    (default ``threshold``)."""
    assert rows.crops is not None and rows.has_crops is not None
    # The known windows of the searched rows, as (row, window) entries.
    entry_row, entry_window = np.nonzero(rows.has_crops[heads])
    if len(entry_row) < 1 or len(heads) < 2:
        return None
    stored = rows.crops[heads[entry_row], entry_window]
    m = len(heads)
    variants = VARIANTS if rotations else 1
    queries = rows.hashes[heads, :variants, :].transpose(1, 0, 2).reshape(m * variants, -1)
    legacy = (
        ~rows.has_crops[heads[entry_row], LEGACY_WINDOWS]
        if legacy_threshold not in (None, threshold) and rows.has_crops.shape[1] > LEGACY_WINDOWS
        else None
    )
    if legacy is None or not legacy.any():
        found = MultiIndex(stored).search(queries, threshold)
    else:  # two searches, each mapped back to the entries
        parts = []
        for subset, bits in ((~legacy, threshold), (legacy, legacy_threshold)):
            entries = np.flatnonzero(subset)
            if len(entries) and bits is not None:
                part = MultiIndex(stored[entries]).search(queries, bits)
                parts.append(Matches(part.query, entries[part.stored], part.distance))
        found = Matches.concat(parts)
    crop_row = heads[entry_row[found.stored]]  # the picture cropped (the original)
    level = entry_window[found.stored]
    copy_row = heads[found.query % m]  # the picture whose full frame matched (the cropped copy)
    variant = found.query // m  # crop looks like DIHEDRAL[variant](copy)
    other = crop_row != copy_row
    crop_row, level, copy_row = crop_row[other], level[other], copy_row[other]
    distance, variant = found.distance[other], variant[other]
    # One pair, one (best) match: the smallest distance, then the first window (the mildest
    # centred crop first), then the identity before other transforms.
    a, b = np.minimum(crop_row, copy_row), np.maximum(crop_row, copy_row)
    order = np.lexsort((variant, level, distance, b, a))
    a, b, level, distance, variant = (
        a[order],
        b[order],
        level[order],
        distance[order],
        variant[order],
    )
    crop_row, copy_row = crop_row[order], copy_row[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    n = int(max(heads.max(initial=0), 0)) + 1
    first &= ~np.isin(a * n + b, known.a * n + known.b)
    a, b, level, distance, variant = (
        a[first],
        b[first],
        level[first],
        distance[first],
        variant[first],
    )
    crop_row, copy_row = crop_row[first], copy_row[first]
    if not len(a):
        return None
    # b looks like DIHEDRAL[v](a): v when a is the copy, its inverse when a is the original.
    a_is_crop = crop_row == a
    variant = np.where(a_is_crop, np.asarray(_INVERSE)[variant], variant)
    stored = load_crop_colours(store, [int(rows.ids[r]) for r in set(crop_row.tolist())])
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


def load_crop_colours(store: Store | None, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored crop-window colour signatures of these images, (windows, 4, 4, 3) uint8 each
    (the first four windows only for rows indexed when four were stored); images without them
    (indexed before they were stored) are left out."""
    out: dict[int, np.ndarray] = {}
    if store is None:
        return out
    cell = SIGNATURE_GRID * SIGNATURE_GRID * 3
    with store.engine.connect() as conn:
        for chunk in _chunks(sorted(ids), 500):
            query = select(Image.id, Image.crop_colour).where(Image.id.in_(chunk))
            for image_id, blob in conn.execute(query):
                if blob is not None and len(blob) in (
                    LEGACY_WINDOWS * cell,
                    len(CROP_WINDOWS) * cell,
                ):
                    out[image_id] = np.frombuffer(blob, dtype=np.uint8).reshape(
                        -1, SIGNATURE_GRID, SIGNATURE_GRID, 3
                    )
    return out


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


def find_pairs(store: Store, options: MatchOptions, rows: Rows | None = None) -> list[Pair]:
    """Every pair of duplicate images in the database, sorted by (a, b).

    ``rows``: the database's rows already loaded by the caller, to share them (``load_rows``
    with ``options.hash`` and the second hash of ``options.resolved_second``, if any).
    """
    options.validate()
    second = options.resolved_second()
    if rows is None:
        rows = load_rows(store, options.hash, second[0] if second else None)
    elif (rows.second is None) != (second is None):
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

    found = search(rows.hashes[heads], threshold, options.rotations)
    if second is not None and rows.second is not None:
        more = search(rows.second[heads], second[1], options.rotations)
        found = merge(found, more, rows.hashes[heads])
    found = Candidates(heads[found.a], heads[found.b], found.distance, found.variant)
    colours = compare_colours(rows, found)
    # What each candidate is: 0 a full-frame match, 1 b is a crop of a, 2 a is a crop of b.
    kind = np.zeros(len(found.a), dtype=np.int8)
    level = np.full(len(found.a), -1, dtype=np.int64)  # the crop level of a crop pair
    cropped: tuple[Candidates, ColourComparison, np.ndarray, np.ndarray] | None = None
    if options.crops and rows.crops is not None and rows.has_crops is not None:
        # A full-frame pair is not looked for again as a crop; a full-frame candidate the
        # guards refuse is (they compared full frames, and a crop's colours differ from its
        # original's): it is judged again on the crop's colours.
        passing = found.take(colour_guard(colours) & date_guard(rows, found))
        cropped = crop_candidates(
            rows,
            heads,
            passing if options.guards else found,
            CROP_THRESHOLD * rows.hash_size**2 // 64,
            options.turned_crops,
            store,
            LEGACY_CROP_THRESHOLD * rows.hash_size**2 // 64,
        )
    if cropped is not None:
        more, more_colours, a_is_whole, more_level = cropped
        found, colours = _joined(found, colours, more, more_colours)
        kind = np.concatenate([kind, np.where(a_is_whole, 1, 2).astype(np.int8)])
        level = np.concatenate([level, more_level.astype(np.int64)])
    if options.guards:
        keep = colour_guard(colours) & date_guard(rows, found)
        found, tones, kind, level = found.take(keep), colours.tone[keep], kind[keep], level[keep]
    else:
        tones = colours.tone
    if options.ssim is not None and len(found.a):
        keep = ssim_scores(store, rows, found, kind, level) >= options.ssim
        found, tones, kind, level = found.take(keep), tones[keep], kind[keep], level[keep]

    for ra, rb, dist, var, tone, k in zip(
        found.a.tolist(),
        found.b.tolist(),
        found.distance.tolist(),
        found.variant.tolist(),
        np.round(tones, 2).tolist(),
        kind.tolist(),
        strict=True,
    ):
        if k:  # a crop pair: which one is the crop, whichever way round the ids come
            name, inverse = (CROP, UNCROP) if k == 1 else (UNCROP, CROP)
        else:
            name, inverse = DIHEDRAL_NAMES[var], DIHEDRAL_NAMES[_INVERSE[var]]
        for x in members_of[ra]:
            for y in members_of[rb]:
                ia, ib = ids[x], ids[y]
                if ia < ib:
                    pairs.append(Pair(ia, ib, dist, False, name, tone))
                else:  # b relative to a is the inverse transform
                    pairs.append(Pair(ib, ia, dist, False, inverse, tone))
    excluded = options.exclude_pairs
    if excluded:
        pairs = [p for p in pairs if (p.a, p.b) not in excluded]
    return sorted(pairs, key=attrgetter("a", "b"))


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
        monotone_a=_monotone(chroma_a, sat_a),
        monotone_b=_monotone(chroma_b, sat_b),
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
      pattern it keeps. Clustering then keeps such copies with the pictures whose tones they
      match best (see cluster.py).
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
    store: Store,
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
    thumbs = load_thumbs(store, [int(rows.ids[r]) for r in needed])
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


def load_thumbs(store: Store, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The 32x32 grayscale thumbnails of these images."""
    out: dict[int, np.ndarray] = {}
    size = THUMB_SIZE * THUMB_SIZE
    with store.session() as session:
        for chunk in _chunks(ids, 500):
            query = select(Image.id, Image.thumb).where(Image.id.in_(chunk))
            for image_id, thumb in session.execute(query):
                if thumb is not None and len(thumb) == size:
                    out[image_id] = (
                        np.frombuffer(thumb, dtype=np.uint8)
                        .reshape(THUMB_SIZE, THUMB_SIZE)
                        .astype(np.float64)
                    )
    return out


def _chunks(values: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
