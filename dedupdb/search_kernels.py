"""The compiled kernels of multi-index hashing (``search.MultiIndex``), apart from it: numba
is imported, and the kernels compiled (slow the first time, then read from numba's cache),
only when a search is large enough to need them. Small searches compare every pair with numpy
instead (``search.brute_force``), with the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba.extending import intrinsic

_F = TypeVar("_F", bound=Callable[..., Any])

WORD_BITS = 64


def _jit(fn: _F) -> _F:
    """Compile with numba (no GIL, so threads run in parallel), cached on disk when possible."""
    try:
        return cast(_F, numba.njit(nogil=True, cache=True)(fn))
    except RuntimeError:  # pragma: no cover - no writable cache location
        return cast(_F, numba.njit(nogil=True)(fn))


@intrinsic
def _ctpop_intrinsic(typingctx: Any, x: Any) -> Any:
    """The CPU's population count (LLVM's ctpop) on a uint64."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.ctpop", [args[0].type])
        return builder.call(fn, args)

    return numba.types.uint64(numba.types.uint64), codegen


_ctpop = cast(Callable[[Any], int], _ctpop_intrinsic)


@_jit
def join_chunk(  # a compiled kernel takes flat arrays
    j: int,  # the chunk
    mask_lo: int,  # the range of flip masks (into ``masks``) this call handles
    mask_hi: int,
    q_sorted: np.ndarray,  # (nq, words) uint64: queries sorted by chunk j's value
    q_order: np.ndarray,  # (nq,) int64: query row of each sorted position
    q_offsets: np.ndarray,  # (2**bits + 1,) int64: sorted query positions per chunk value
    owner: np.ndarray,  # (nq,) int64 by query row: stored row it was derived from, or -1
    chunk_word: np.ndarray,  # (m,) int64, per chunk
    chunk_shift: np.ndarray,
    chunk_bits: np.ndarray,
    chunk_radius: np.ndarray,
    masks: np.ndarray,  # flat int64 flip masks of every chunk
    mask_top: np.ndarray,  # each mask's highest set bit (0 for the empty mask)
    mask_start: np.ndarray,  # (m + 1,) int64 into masks
    offsets: np.ndarray,  # flat int64 stored positions per chunk value, 2**bits + 1 per chunk
    offset_start: np.ndarray,  # (m,) int64 into offsets
    sorted_hashes: np.ndarray,  # (m, n, words) uint64: stored hashes sorted by chunk value
    order: np.ndarray,  # (m, n) int64: stored row of each sorted position
    threshold: int,
    self_join: bool,
) -> np.ndarray:
    """Pairs found through chunk ``j`` and the flip masks in the range, as rows (query row,
    stored row, distance).

    Queries sharing a chunk value are handled together, so each bucket of stored hashes is
    read once per group rather than once per query; and for one mask the chunk values are
    walked in order, so both the queries and the buckets (``value ^ mask``) are read nearly
    sequentially. What limits this loop is the look-up of each (group, bucket), with its
    branches and short loops, far more than the bit counting: ``plan_chunks`` weighs both.
    """
    words = q_sorted.shape[1]
    q_first = q_sorted.reshape(q_sorted.size)  # a view: the hashes themselves when words == 1
    s_first = sorted_hashes[j].reshape(sorted_hashes.shape[1] * words)
    base = offset_start[j]
    keys = q_offsets.shape[0] - 1
    out = np.empty((1024, 3), np.int64)
    count = 0
    for k in range(mask_lo, mask_hi):
        mask = masks[k]
        top = mask_top[k]
        # In a self-join a bucket met with itself holds each pair twice: (qi, pos) and (pos,
        # qi). Stored rows keep their order within a bucket, so the pair is taken once, from
        # the position before the query's.
        triangle = self_join and mask == 0
        for key in range(keys):
            qa = q_offsets[key]
            qb = q_offsets[key + 1]
            if qa == qb:
                continue
            # In a self-join a pair whose chunk values differ by ``mask`` is met from both
            # sides: keep the side whose value has the mask's top bit clear.
            if self_join and mask != 0 and key & top:
                continue
            bucket = key ^ mask
            sa = offsets[base + bucket]
            sb = offsets[base + bucket + 1]
            if sa == sb:
                continue
            # Nearly every group of candidates holds no pair: look for one first, in loops
            # without branches that the compiler vectorises, and emit only when there is one.
            if words == 1 and not _any_within(q_first, qa, qb, s_first, sa, sb, threshold,
                                               triangle):  # fmt: skip
                continue
            for pos in range(sa, sb):
                for qi in range(qa, pos if triangle else qb):
                    dist = 0
                    for w in range(words):
                        dist += _ctpop(q_sorted[qi, w] ^ sorted_hashes[j, pos, w])
                    if dist <= threshold:
                        out, count = _emit(out, count, j, qi, pos, mask == 0, q_sorted,
                                           q_order, owner, chunk_word, chunk_shift,
                                           chunk_bits, chunk_radius, sorted_hashes, order,
                                           threshold, self_join)  # fmt: skip
    result: np.ndarray = out[:count].copy()
    return result


@_jit
def _any_within(
    queries: np.ndarray,
    qa: int,
    qb: int,
    stored: np.ndarray,
    sa: int,
    sb: int,
    threshold: int,
    triangle: bool,
) -> bool:
    """Whether any of ``queries[qa:qb]`` lies within ``threshold`` bits of any of
    ``stored[sa:sb]`` (64-bit hashes); with ``triangle`` (one bucket against itself) only
    pairs of two different positions count. The inner loop runs over the longer range: it is
    the one that vectorises. (Loops rather than ``any()``: numba compiles no generators.)"""
    if triangle:
        for pos in range(sa + 1, sb):  # noqa: SIM110
            if _hits(stored[pos], queries, qa, pos, threshold):
                return True
        return False
    if sb - sa > qb - qa:
        for qi in range(qa, qb):  # noqa: SIM110
            if _hits(queries[qi], stored, sa, sb, threshold):
                return True
        return False
    for pos in range(sa, sb):  # noqa: SIM110
        if _hits(stored[pos], queries, qa, qb, threshold):
            return True
    return False


@_jit
def _hits(value: np.uint64, hashes: np.ndarray, start: int, end: int, threshold: int) -> bool:
    """Whether any of ``hashes[start:end]`` lies within ``threshold`` bits of ``value``: the
    smallest distance, in a loop without branches that the compiler vectorises (unsigned
    indices and values, so that it needs neither gathers nor conversions to float)."""
    nearest = np.uint64(WORD_BITS)
    for i in range(np.uint64(start), np.uint64(end)):
        nearest = min(nearest, _ctpop(hashes[i] ^ value))
    found: bool = nearest <= np.uint64(threshold)
    return found


@_jit
def _emit(
    out: np.ndarray,
    count: int,
    j: int,
    qi: int,
    pos: int,
    same_bucket: bool,
    q_sorted: np.ndarray,
    q_order: np.ndarray,
    owner: np.ndarray,
    chunk_word: np.ndarray,
    chunk_shift: np.ndarray,
    chunk_bits: np.ndarray,
    chunk_radius: np.ndarray,
    sorted_hashes: np.ndarray,
    order: np.ndarray,
    threshold: int,
    self_join: bool,
) -> tuple[np.ndarray, int]:
    """Record a verified candidate unless it is the query itself or found elsewhere."""
    q = q_order[qi]
    row = order[j, pos]
    if self_join:
        if same_bucket and row <= q:
            return out, count
    elif row == owner[q]:
        return out, count
    # Report a pair only through the first chunk that finds it.
    for e in range(j):
        if chunk_radius[e] < 0:
            continue
        diff = q_sorted[qi, chunk_word[e]] ^ sorted_hashes[j, pos, chunk_word[e]]
        part = (diff >> np.uint64(chunk_shift[e])) & np.uint64(
            (np.int64(1) << np.int64(chunk_bits[e])) - 1
        )
        if _ctpop(part) <= chunk_radius[e]:
            return out, count
    dist = 0
    for w in range(q_sorted.shape[1]):
        dist += _ctpop(q_sorted[qi, w] ^ sorted_hashes[j, pos, w])
    if count == out.shape[0]:
        bigger = np.empty((2 * count, 3), np.int64)
        bigger[:count] = out
        out = bigger
    if self_join and row < q:
        out[count, 0] = row
        out[count, 1] = q
    else:
        out[count, 0] = q
        out[count, 1] = row
    out[count, 2] = dist
    return out, count + 1


@_jit
def counting_sort(
    hashes: np.ndarray,  # (n, words) uint64
    word: int,  # the chunk: (hashes[:, word] >> shift) & (2**bits - 1)
    shift: int,
    bits: int,
    rows: np.ndarray,  # out (n,) int64: the row at each sorted position
    in_order: np.ndarray,  # out (n, words) uint64: the hashes, sorted
    offsets: np.ndarray,  # out (2**bits + 1,) int64: where each chunk value's rows start
) -> None:
    """The rows sorted by the chunk's value, stably (a counting sort: two passes, no
    comparisons)."""
    n, words = hashes.shape
    low = np.uint64((1 << bits) - 1)
    offsets[:] = 0
    for i in range(n):
        offsets[((hashes[i, word] >> np.uint64(shift)) & low) + np.uint64(1)] += 1
    for v in range(1 << bits):
        offsets[v + 1] += offsets[v]
    at = offsets[:-1].copy()
    for i in range(n):
        value = (hashes[i, word] >> np.uint64(shift)) & low
        position = at[value]
        at[value] = position + 1
        rows[position] = i
        for w in range(words):
            in_order[position, w] = hashes[i, w]
