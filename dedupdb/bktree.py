"""Exact Hamming-radius search over integer hashes: no database, no images.

Two structures answer the same question, "which stored hashes lie within ``threshold`` bits of
each query?", with exact results:

- ``BKTree``: the Burkhard-Keller metric tree the design started from (as in pybktree). Simple and
  right, but at threshold 10 over 64-bit hashes it visits most of the tree for every query:
  pybktree needs hours for 100,000 hashes. Kept as a readable reference for small sets and tests.
- ``MultiIndex``: multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space
  with Multi-Index Hashing", CVPR 2012) with the general pigeonhole principle (Qin, Wang, Xiao,
  Wang, Lin, Wang, "GPH: Similarity Search in Hamming Space", ICDE 2018). The bits are cut into
  ``m`` chunks, and chunk ``j`` gets a radius ``t_j`` with ``sum(t_j) = threshold - m + 1``: two
  hashes within ``threshold`` bits then differ by at most ``t_j`` bits in at least one chunk ``j``
  (otherwise they would differ by at least ``sum(t_j + 1) = threshold + 1``). For each chunk the
  stored hashes are sorted by that chunk's value; every query looks up the buckets of the chunk
  values within ``t_j`` of its own, and each candidate found there is verified on the whole hash.
  All the work is vectorised with numpy over every query at once, one (chunk, bit-flip mask) at a
  time, spread over threads (numpy releases the GIL in these loops).

Hashes are handled as numpy arrays of shape ``(n, words)`` of ``uint64``: one word for the
default 64-bit hashes, four for 256-bit ones (``hash_size`` 16). ``to_words`` converts Python
integers; ``brute_force`` is the obviously correct reference the tests compare against.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

WORD_BITS = 64
# Searches of at most this many (query, stored) comparisons compare every pair with numpy
# (``brute_force``: about a second at this size) rather than with the compiled kernels, whose
# first compilation after installing takes 10-20 s: a first report on a few thousand photos
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


def hamming(a: int, b: int) -> int:
    """The number of differing bits between two hashes."""
    return (a ^ b).bit_count()


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


# ---------------------------------------------------------------- BK-tree


@dataclass
class _Node:
    value: int
    items: list[int]  # payloads stored at exactly this hash
    children: dict[int, _Node] = field(default_factory=dict)


class BKTree:
    """A Burkhard-Keller tree over integer hashes with the Hamming metric (see pybktree).

    ``add(hash, item)`` stores a payload; ``find(hash, threshold)`` returns ``(distance, item)``
    for every payload within the threshold, sorted. Exact, but slow at large thresholds.
    """

    def __init__(self, entries: Iterable[tuple[int, int]] = ()) -> None:
        self._root: _Node | None = None
        self._size = 0
        for value, item in entries:
            self.add(value, item)

    def __len__(self) -> int:
        return self._size

    def add(self, value: int, item: int) -> None:
        self._size += 1
        if self._root is None:
            self._root = _Node(value, [item])
            return
        node = self._root
        while True:
            d = hamming(value, node.value)
            if d == 0:
                node.items.append(item)
                return
            child = node.children.get(d)
            if child is None:
                node.children[d] = _Node(value, [item])
                return
            node = child

    def find(self, value: int, threshold: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        stack = [self._root] if self._root is not None else []
        while stack:
            node = stack.pop()
            d = hamming(value, node.value)
            if d <= threshold:
                found.extend((d, item) for item in node.items)
            # Triangle inequality: only subtrees at distance d +- threshold can hold matches.
            for edge, child in node.children.items():
                if d - threshold <= edge <= d + threshold:
                    stack.append(child)
        return sorted(found)


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
        from .mih_kernels import join_chunk

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
        from .mih_kernels import counting_sort

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
    from .mih_kernels import counting_sort

    counting_sort(hashes, chunk.word, chunk.shift, chunk.bits, rows, in_order, offsets)
    return in_order, rows, offsets
