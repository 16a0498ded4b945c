"""Exact Hamming-radius search over hashes: no database, no images.

The question: "which stored hashes lie within ``threshold`` bits of each query?", answered
exactly by multi-index hashing (``MultiIndex``: Norouzi, Punjani and Fleet, "Fast Search in
Hamming Space with Multi-Index Hashing", CVPR 2012) with the general pigeonhole principle (Qin,
Wang, Xiao, Wang, Lin, Wang, "GPH: Similarity Search in Hamming Space", ICDE 2018). The bits are
cut into ``m`` chunks, and chunk ``j`` gets a radius ``t_j`` with ``sum(t_j) = threshold - m +
1``: two hashes within ``threshold`` bits then differ by at most ``t_j`` bits in at least one
chunk ``j`` (otherwise they would differ by at least ``sum(t_j + 1) = threshold + 1``). For each
chunk the stored hashes are sorted by that chunk's value; every query looks up the buckets of
the chunk values within ``t_j`` of its own, and each candidate found there is verified on the
whole hash. The compiled loops live in ``search_kernels`` (numba, loaded only for searches large
enough to need them), spread over threads.

Hashes are handled as numpy arrays of shape ``(n, words)`` of ``uint64``: one word for the
default 64-bit hashes, four for 256-bit ones (``hash_size`` 16). ``to_words`` converts Python
integers; ``brute_force`` is the obviously correct reference the tests compare against (a
BK-tree, the structure the design started from, is kept in the tests as another).

On top of it, the two searches matching runs over a library's rows (``all_pairs``: every two
pictures within the threshold under any of the 8 dihedral variants; ``crop_pairs``: a picture's
full frame against the others' crop windows) give candidate pairs as row numbers, before any
guard.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .hashes import DIHEDRAL_NAMES, VARIANTS

WORD_BITS = 64
# Searches of at most this many (query, stored) comparisons compare every pair with numpy
# (``brute_force``, a fraction of a second at this size) rather than with the compiled
# kernels, whose first compilation after installing takes far longer: a first report on up
# to about 1,400 photos (the crop search: each photo against 17 windows of every other)
# starts at once.
EXHAUSTIVE_BELOW = 1 << 25
# Widest chunk: its bucket table has 2**bits + 1 offsets.
MAX_TABLE_BITS = 22
# Each chunk's flip masks are handled in groups of this many: the units of work for threads.
MASKS_PER_TASK = 8
# The search's cost model (``plan_chunks``), in candidate checks: a check (a popcount in a
# vectorised loop), a step of the walk over a chunk's values, a bucket look-up for a group of
# queries (branches and short loops), a row sorted into a chunk's order, an offsets entry.
_CHECK = 1.0
_WALK = 0.8
_LOOKUP = 94.0
_SORT = 87.0
_TABLE = 240.0


def to_words(hashes: Iterable[int], bits: int) -> np.ndarray:
    """Python integers of ``bits`` bits (a multiple of 64) as a ``(n, bits // 64)`` uint64 array,
    most significant word first."""
    if bits % WORD_BITS:
        raise ValueError("hash width must be a multiple of 64 bits")
    words = bits // WORD_BITS
    data = b"".join(int(h).to_bytes(bits // 8, "big") for h in hashes)
    return np.frombuffer(data, dtype=">u8").astype(np.uint64).reshape(-1, words)


def popcount(words: np.ndarray) -> np.ndarray:
    """Bits set per row of a ``(n, words)`` uint64 array, as int64."""
    counts = np.bitwise_count(words).astype(np.int64)
    return np.asarray(counts.sum(axis=1), dtype=np.int64)


@dataclass(frozen=True)
class Matches:
    """Ordered pairs (query row, stored row) within the threshold, and their distances."""

    query: np.ndarray  # int64 row numbers into the queries
    stored: np.ndarray  # int64 row numbers into the stored hashes
    distance: np.ndarray  # int64 Hamming distances

    def __len__(self) -> int:
        return len(self.query)

    @staticmethod
    def empty() -> Matches:
        nothing = np.zeros(0, dtype=np.int64)
        return Matches(nothing, nothing, nothing)

    @staticmethod
    def concat(parts: Sequence[Matches]) -> Matches:
        if not parts:
            return Matches.empty()
        return Matches(
            np.concatenate([p.query for p in parts]),
            np.concatenate([p.stored for p in parts]),
            np.concatenate([p.distance for p in parts]),
        )

    def unique(self) -> Matches:
        """Each (query, stored) pair once, sorted by query then stored row."""
        if not len(self):
            return self
        order = np.lexsort((self.stored, self.query))
        q, s, d = self.query[order], self.stored[order], self.distance[order]
        keep = np.ones(len(q), dtype=bool)
        keep[1:] = (q[1:] != q[:-1]) | (s[1:] != s[:-1])
        return Matches(q[keep], s[keep], d[keep])

    def as_set(self) -> set[tuple[int, int, int]]:
        return set(
            zip(self.query.tolist(), self.stored.tolist(), self.distance.tolist(), strict=True)
        )


def _check(stored: np.ndarray, queries: np.ndarray, threshold: int) -> None:
    if stored.ndim != 2 or queries.ndim != 2 or stored.shape[1] != queries.shape[1]:
        raise ValueError("stored hashes and queries must be (n, words) arrays of one width")
    if threshold < 0:
        raise ValueError("threshold must be >= 0")


def brute_force(
    stored: np.ndarray, queries: np.ndarray | None, threshold: int, *, batch: int = 1 << 22
) -> Matches:
    """Every (query, stored) pair within ``threshold`` bits, by comparing all of them.

    With ``queries`` None this is the self-join of ``stored``: each unordered pair of distinct
    rows once, as (lower row, higher row).
    """
    self_join = queries is None
    q_all = stored if queries is None else queries
    _check(stored, q_all, threshold)
    parts = []
    step = max(1, batch // max(1, len(stored)))
    for start in range(0, len(q_all), step):
        block = q_all[start : start + step]
        x = block[:, None, :] ^ stored[None, :, :]
        dist = np.bitwise_count(x).sum(axis=2, dtype=np.int64)
        qi, si = np.nonzero(dist <= threshold)
        qi = qi + start
        if self_join:
            keep = qi < si
            qi, si = qi[keep], si[keep]
        parts.append(Matches(qi.astype(np.int64), si.astype(np.int64), dist[qi - start, si]))
    return Matches.concat(parts)


# ---------------------------------------------------------------- multi-index hashing


def _flip_masks(bits: int, radius: int) -> list[int]:
    """Every ``bits``-bit mask with at most ``radius`` bits set, 0 first."""
    masks = [0]
    for weight in range(1, radius + 1):
        masks.extend(sum(1 << p for p in c) for c in itertools.combinations(range(bits), weight))
    return masks


def _ball(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(radius + 1)) if radius >= 0 else 0


@dataclass(frozen=True)
class Chunk:
    """One slice of the hash: ``(words[word] >> shift) & (2**bits - 1)``, searched to ``radius``
    bit flips (-1: not searched)."""

    word: int
    shift: int
    bits: int
    radius: int


def plan_chunks(total_bits: int, threshold: int, stored: int, queries: int) -> list[Chunk]:
    """The chunking with the least estimated work for these sizes.

    Cost model, in candidate checks (``_CHECK`` .. ``_TABLE``, fitted to the search's CPU time
    over random 64-bit hashes, 1,000 to 1,700,000 rows, thresholds 6 to 14): every (chunk, flip
    mask) walks the chunk's values and looks up the bucket of each group of queries sharing a
    value; every candidate in the buckets is checked; every chunk sorts the stored hashes and
    the queries, and builds a table of offsets.
    """
    words = total_bits // WORD_BITS
    best: tuple[float, list[Chunk]] | None = None
    for per_word in (2, 3, 4, 5, 6, 8):
        widths = [WORD_BITS // per_word + (1 if i < WORD_BITS % per_word else 0)
                  for i in range(per_word)]  # fmt: skip
        if max(widths) > MAX_TABLE_BITS:
            continue
        layout: list[tuple[int, int, int]] = []
        for w in range(words):
            shift = WORD_BITS
            for width in widths:
                shift -= width
                layout.append((w, shift, width))
        radii = [-1] * len(layout)
        # General pigeonhole: sum(t_j) = threshold - m + 1, spread evenly, wider chunks first.
        for step in range(threshold + 1):
            radii[step % len(layout)] += 1
        cost = len(layout) * (_SORT * (stored + queries) + _TABLE * 2.0 ** max(widths))
        for (_, _, width), radius in zip(layout, radii, strict=True):
            values = 2.0**width
            groups = values * -math.expm1(-queries / values)  # chunk values with queries
            cost += _ball(width, radius) * (
                _WALK * values + _LOOKUP * groups + _CHECK * queries * stored / values
            )
        plan = [Chunk(w, s, b, r) for (w, s, b), r in zip(layout, radii, strict=True)]
        if best is None or cost < best[0]:
            best = (cost, plan)
    assert best is not None
    return best[1]


class MultiIndex:
    """Stored hashes indexed for exact Hamming-radius search by multi-index hashing.

    ``MultiIndex(stored).search(queries, threshold)``: every (query, stored) pair within the
    threshold, each once; ``search(None, threshold)`` joins the stored hashes with themselves.
    Searches of at most ``exhaustive_below`` comparisons compare every pair with numpy
    instead (``brute_force``; the same pairs, see ``EXHAUSTIVE_BELOW``).
    """

    def __init__(self, stored: np.ndarray, *, exhaustive_below: int = EXHAUSTIVE_BELOW) -> None:
        if stored.ndim != 2:
            raise ValueError("stored hashes must be an (n, words) uint64 array")
        self.stored = np.ascontiguousarray(stored, dtype=np.uint64)
        self.exhaustive_below = exhaustive_below
        self._prepared: dict[tuple[Chunk, ...], _Tables] = {}

    def __len__(self) -> int:
        return len(self.stored)

    def search(
        self,
        queries: np.ndarray | None,
        threshold: int,
        *,
        owner: np.ndarray | None = None,
        workers: int | None = None,
    ) -> Matches:
        """Every (query, stored) pair within ``threshold`` bits, each once.

        ``queries`` None: the self-join, each unordered pair of distinct stored rows once as
        (lower row, higher row), for half the work. ``owner[i]``, when given, is the stored row
        query ``i`` was derived from (e.g. a rotated copy of it): that pair is left out.
        """
        self_join = queries is None
        q_all = self.stored if queries is None else np.ascontiguousarray(queries, dtype=np.uint64)
        _check(self.stored, q_all, threshold)
        if not len(self.stored) or not len(q_all):
            return Matches.empty()
        if len(q_all) * len(self.stored) <= self.exhaustive_below:
            return _exhaustive(self.stored, queries, threshold, owner)
        from .search_kernels import join_chunk

        bits = self.stored.shape[1] * WORD_BITS
        threshold = min(threshold, bits)
        owners = (
            np.full(len(q_all), -1, dtype=np.int64)
            if owner is None
            else np.ascontiguousarray(owner, dtype=np.int64)
        )
        plan = tuple(plan_chunks(bits, threshold, len(self.stored), len(q_all)))
        searched = [j for j, chunk in enumerate(plan) if chunk.radius >= 0]
        workers = max(1, workers or os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            # The sorts that prepare each chunk run in the threads too (numpy releases the GIL
            # while sorting and gathering rows).
            serial = workers == 1 or len(q_all) * len(self.stored) < 1 << 16
            each: Callable[..., Iterable[Any]] = map if serial else pool.map
            tables = self._tables(plan, each)
            if self_join:
                by_chunk = {
                    j: (tables.arrays[-2][j], tables.arrays[-1][j], tables.chunk_offsets(j))
                    for j in searched
                }
            else:
                by_chunk = dict(
                    zip(searched, each(lambda j: _sort_by_chunk(q_all, plan[j]), searched),
                        strict=True)
                )  # fmt: skip
            tasks = []
            for j in searched:
                first, last = tables.mask_range(j)
                for lo in range(first, last, MASKS_PER_TASK):
                    tasks.append((j, lo, min(last, lo + MASKS_PER_TASK), *by_chunk[j]))
            rest = (owners, *tables.arrays, threshold, self_join)

            def run(task: tuple[Any, ...]) -> np.ndarray:
                return join_chunk(*task, *rest)

            parts = list(each(run, tasks))
        rows = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
        return Matches(rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy())

    def _tables(self, plan: tuple[Chunk, ...], each: Callable[..., Iterable[Any]] = map) -> _Tables:
        if plan not in self._prepared:
            self._prepared[plan] = _Tables.build(self.stored, plan, each)
        return self._prepared[plan]


def _exhaustive(
    stored: np.ndarray, queries: np.ndarray | None, threshold: int, owner: np.ndarray | None
) -> Matches:
    """``MultiIndex.search`` by comparing every pair: ``brute_force``, without the pairs of a
    query and the stored row it was derived from (``owner``)."""
    found = brute_force(stored, queries, threshold)
    if owner is None or not len(found):
        return found
    keep = found.stored != np.asarray(owner, dtype=np.int64)[found.query]
    return Matches(found.query[keep], found.stored[keep], found.distance[keep])


@dataclass(frozen=True)
class _Tables:
    """The kernel's flat arrays for one chunk plan."""

    arrays: tuple[np.ndarray, ...]
    bounds: tuple[tuple[int, int], ...]  # each chunk's slice of the flat offsets

    def mask_range(self, j: int) -> tuple[int, int]:
        """Chunk ``j``'s flip masks, as a range of indices into the flat masks."""
        mask_start = self.arrays[6]
        return int(mask_start[j]), int(mask_start[j + 1])

    def chunk_offsets(self, j: int) -> np.ndarray:
        lo, hi = self.bounds[j]
        return self.arrays[-4][lo:hi]

    @staticmethod
    def build(
        stored: np.ndarray, plan: Sequence[Chunk], each: Callable[..., Iterable[Any]] = map
    ) -> _Tables:
        """The tables; ``each`` maps the per-chunk sorts (``map``, or a thread pool's)."""
        from .search_kernels import counting_sort

        masks: list[int] = []
        mask_start = [0]
        offsets = []
        offset_start = []
        bounds = []
        sorted_hashes = np.empty((len(plan), *stored.shape), dtype=np.uint64)
        order = np.empty((len(plan), len(stored)), dtype=np.int64)

        def sort(j: int) -> np.ndarray:
            table = np.empty((1 << plan[j].bits) + 1, dtype=np.int64)
            chunk = plan[j]
            counting_sort(stored, chunk.word, chunk.shift, chunk.bits, order[j],
                          sorted_hashes[j], table)  # fmt: skip
            return table

        tables = list(each(sort, range(len(plan))))
        at = 0
        for j, chunk in enumerate(plan):
            masks.extend(_flip_masks(chunk.bits, chunk.radius) if chunk.radius >= 0 else [])
            mask_start.append(len(masks))
            table = tables[j]
            offsets.append(table)
            bounds.append((at, at + len(table)))
            offset_start.append(at)
            at += len(table)

        def ints(values: Sequence[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        return _Tables(
            (
                ints([c.word for c in plan]),
                ints([c.shift for c in plan]),
                ints([c.bits for c in plan]),
                ints([c.radius for c in plan]),
                ints(masks),
                ints([1 << (m.bit_length() - 1) if m else 0 for m in masks]),
                ints(mask_start),
                np.concatenate(offsets),
                ints(offset_start),
                sorted_hashes,
                order,
            ),
            tuple(bounds),
        )


def _sort_by_chunk(hashes: np.ndarray, chunk: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by the chunk's value: (sorted rows, their row numbers, offsets per value)."""
    rows = np.empty(len(hashes), dtype=np.int64)
    in_order = np.empty_like(hashes)
    offsets = np.empty((1 << chunk.bits) + 1, dtype=np.int64)
    from .search_kernels import counting_sort

    counting_sort(hashes, chunk.word, chunk.shift, chunk.bits, rows, in_order, offsets)
    return in_order, rows, offsets


# ---------------------------------------------------------------- the searches matching runs

# The index of each dihedral transform's inverse (rot90 and rot270 undo each other; the others
# are their own inverse).
INVERSE = [
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


@dataclass
class Candidates:
    """Image pairs (as row numbers) within the threshold, before the guards."""

    a: np.ndarray  # int64 rows, a < b
    b: np.ndarray
    distance: np.ndarray  # int64 bits
    variant: np.ndarray  # int64 index into DIHEDRAL: b looks like DIHEDRAL[variant](a)

    def take(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.a[keep], self.b[keep], self.distance[keep], self.variant[keep])


def all_pairs(hashes: np.ndarray, threshold: int, rotations: bool) -> Candidates:
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
        parts_v.append(np.where(forward, v, np.asarray(INVERSE)[v]))
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


@dataclass(frozen=True)
class CropMatches:
    """Pairs where one row's full frame matched another's crop window, one (the best) per
    pair, as row numbers: ``crop_row`` is the picture whose window matched (the original),
    ``copy_row`` the one whose full frame did (the cropped copy), ``level`` the window's index
    (``hashes.CROP_WINDOWS``); the window looks like ``DIHEDRAL[variant](copy)``."""

    a: np.ndarray  # min(crop_row, copy_row)
    b: np.ndarray  # max(crop_row, copy_row)
    crop_row: np.ndarray
    copy_row: np.ndarray
    level: np.ndarray
    distance: np.ndarray
    variant: np.ndarray


def crop_pairs(
    hashes: np.ndarray,
    crops: np.ndarray,
    has_crops: np.ndarray,
    heads: np.ndarray,
    threshold: int,
    rotations: bool,
    legacy_threshold: int | None,
    legacy_windows: int,
) -> CropMatches | None:
    """Every pair of ``heads`` (row numbers) where one's full frame (``hashes`` (n, 8, words):
    its upright hash, or with ``rotations`` its 8 dihedral variants) is within ``threshold``
    bits of the other's known crop window (``crops`` (n, windows, words), ``has_crops`` (n,
    windows) bool). Rows whose windows past the first ``legacy_windows`` are unknown (indexed
    when only those were stored) are searched within ``legacy_threshold`` bits (None: the
    same). One match per pair: the smallest distance, then the first window (the mildest
    centred crop first), then the identity before other transforms."""
    # The known windows of the searched rows, as (row, window) entries.
    entry_row, entry_window = np.nonzero(has_crops[heads])
    if len(entry_row) < 1 or len(heads) < 2:
        return None
    stored = crops[heads[entry_row], entry_window]
    m = len(heads)
    variants = VARIANTS if rotations else 1
    queries = hashes[heads, :variants, :].transpose(1, 0, 2).reshape(m * variants, -1)
    legacy = (
        ~has_crops[heads[entry_row], legacy_windows]
        if legacy_threshold not in (None, threshold) and has_crops.shape[1] > legacy_windows
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
    a, b = np.minimum(crop_row, copy_row), np.maximum(crop_row, copy_row)
    order = np.lexsort((variant, level, distance, b, a))
    first = np.ones(len(a), dtype=bool)
    a, b = a[order], b[order]
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    picked = order[first]
    return CropMatches(
        a[first],
        b[first],
        crop_row[picked],
        copy_row[picked],
        level[picked],
        distance[picked],
        variant[picked],
    )
