"""The exact all-pairs search partitioned over a Dask cluster, with the single-machine result.

``match.search`` finds every pair of rows within ``threshold`` bits (rotation-aware: each row's
8 dihedral variants against every other row's upright hash) with multi-index hashing on one
machine. Here the rows are cut into ``B`` contiguous blocks and each unordered pair of blocks
``{I, K}`` is one task on a worker: a block with itself is ``match.search`` of that block; two
blocks are joined across (``bktree.MultiIndex`` over one block, the other's hashes as queries,
both ways for the turned variants). Every pair of rows lies in exactly one block pair, so each
task keeps, per pair, the same candidate ``match.search`` keeps (smallest distance, then lowest
variant) and the merge is a concatenation and a sort: the result is identical, array for array.

A worker holds two blocks and their tables, never the whole set: the blocks are scattered to
the cluster once and Dask moves them to the tasks that need them. The work grows as the
single-machine search's does (every candidate checked once), plus each task's sorts and
bucket tables (``B`` times the single search's sorting); see docs/scale-out.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from distributed import Client, Future, as_completed

from ..hashes import DIHEDRAL
from ..match import Searcher
from ..search import Candidates, Matches, MultiIndex
from ..search import all_pairs as local_search

__all__ = ["block_bounds", "partitioned_search", "search", "search_block_pair"]

# A block's rows; smaller blocks mean more, shorter tasks (better balance, more sorting).
DEFAULT_BLOCK_ROWS = 250_000


def _inverse_variants() -> np.ndarray:
    """For each dihedral variant, the one that undoes it (derived from ``hashes.DIHEDRAL``)."""
    grid = np.arange(16).reshape(4, 4)
    turned = [transform(grid) for transform in DIHEDRAL]
    return np.asarray(
        [
            next(w for w, undo in enumerate(DIHEDRAL) if np.array_equal(undo(t), grid))
            for t in turned
        ],
        dtype=np.int64,
    )


_INVERSE = _inverse_variants()


def block_bounds(n: int, block_rows: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each contiguous block of at most ``block_rows`` rows."""
    if block_rows < 1:
        raise ValueError("block_rows must be at least 1")
    return [(start, min(n, start + block_rows)) for start in range(0, n, block_rows)]


def _best_per_pair(a: np.ndarray, b: np.ndarray, d: np.ndarray, v: np.ndarray) -> Candidates:
    """One candidate per (a, b): the smallest distance, then the lowest variant; sorted by
    (a, b). (``match.search``'s rule.)"""
    order = np.lexsort((v, d, b, a))
    a, b, d, v = a[order], b[order], d[order], v[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return Candidates(a[first], b[first], d[first], v[first])


def _turned(hashes: np.ndarray) -> np.ndarray:
    """Variants 1..7 of every row, as queries ordered variant-major (row ``q`` of variant
    ``v`` at ``(v - 1) * n + q``)."""
    turned: np.ndarray = hashes[:, 1:, :].transpose(1, 0, 2).reshape(-1, hashes.shape[2])
    return turned


def _across(first: np.ndarray, second: np.ndarray, threshold: int, rotations: bool) -> Candidates:
    """Pairs (row of ``first``, row of ``second``) within the threshold, rows local to each
    block; every row of ``first`` comes before every row of ``second`` in the whole set."""
    n_first, n_second = len(first), len(second)
    upright = MultiIndex(second[:, 0, :]).search(first[:, 0, :], threshold)
    parts: list[tuple[np.ndarray, ...]] = [
        (upright.query, upright.stored, upright.distance, np.zeros(len(upright), np.int64))
    ]
    if rotations:
        # first's variants against second: b = DIHEDRAL[v](a).
        found: Matches = MultiIndex(second[:, 0, :]).search(_turned(first), threshold)
        parts.append(
            (found.query % n_first, found.stored, found.distance, found.query // n_first + 1)
        )
        # second's variants against first: a = DIHEDRAL[v](b), so b = inverse(v)(a).
        found = MultiIndex(first[:, 0, :]).search(_turned(second), threshold)
        parts.append(
            (
                found.stored,
                found.query % n_second,
                found.distance,
                _INVERSE[found.query // n_second + 1],
            )
        )
    a, b, d, v = (np.concatenate(column).astype(np.int64) for column in zip(*parts, strict=True))
    return _best_per_pair(a, b, d, v)


def search_block_pair(
    first: np.ndarray,
    second: np.ndarray | None,
    first_start: int,
    second_start: int,
    threshold: int,
    rotations: bool,
) -> Candidates:
    """One task: the pairs between two blocks (``second`` None: within ``first``), as global
    rows. ``first`` and ``second`` are ``(rows, 8, words)`` uint64 blocks, ``first`` before."""
    if second is None:
        local = local_search(first, threshold, rotations)
        return Candidates(
            local.a + first_start, local.b + first_start, local.distance, local.variant
        )
    local = _across(first, second, threshold, rotations)
    return Candidates(local.a + first_start, local.b + second_start, local.distance, local.variant)


def partitioned_search(
    client: Client,
    blocks: Sequence[Future[np.ndarray] | np.ndarray],
    starts: Sequence[int],
    threshold: int,
    rotations: bool,
    *,
    retries: int = 1,
) -> Candidates:
    """``match.search`` over the concatenation of ``blocks``, one task per pair of blocks.

    ``blocks``: ``(rows, 8, words)`` uint64 arrays, or futures of them already on the cluster
    (scattered, or made by tasks, so that the client never holds the whole set); ``starts``:
    each block's first row in the whole. Returns the candidates sorted by (a, b), identical to
    ``match.search(np.concatenate(blocks), threshold, rotations)``.
    """
    if len(blocks) != len(starts):
        raise ValueError("one start row per block")
    on_cluster: list[Any] = [
        block if isinstance(block, Future) else client.scatter(block)  # type: ignore[no-untyped-call]
        for block in blocks
    ]
    tasks = []
    for i in range(len(on_cluster)):
        for k in range(i, len(on_cluster)):
            tasks.append(
                client.submit(
                    search_block_pair,
                    on_cluster[i],
                    on_cluster[k] if k != i else None,
                    starts[i],
                    starts[k],
                    threshold,
                    rotations,
                    pure=False,
                    retries=retries,
                )
            )
    parts: list[Candidates] = []
    for finished in as_completed(tasks, loop=client.loop):  # type: ignore[no-untyped-call]
        parts.append(finished.result())
        finished.release()
    if not parts:
        nothing = np.zeros(0, dtype=np.int64)
        return Candidates(nothing, nothing, nothing, nothing)
    a = np.concatenate([p.a for p in parts])
    b = np.concatenate([p.b for p in parts])
    order = np.lexsort((b, a))
    return Candidates(
        a[order],
        b[order],
        np.concatenate([p.distance for p in parts])[order],
        np.concatenate([p.variant for p in parts])[order],
    )


def search(
    client: Client,
    hashes: np.ndarray,
    threshold: int,
    rotations: bool,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Candidates:
    """``match.search(hashes, threshold, rotations)`` on the cluster: the rows cut into blocks
    of ``block_rows`` and scattered to the workers."""
    bounds = block_bounds(len(hashes), block_rows)
    blocks = [np.ascontiguousarray(hashes[start:stop]) for start, stop in bounds]
    return partitioned_search(client, blocks, [start for start, _ in bounds], threshold, rotations)


def searcher(client: Client, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> Searcher:
    """The report's all-pairs search (``match.Searcher``) run on the cluster: ``dedupdb report
    --scheduler``, and ``report.build_report(..., searcher=...)`` from Python. Fewer than two
    rows have no pair to look for, and are not sent."""

    def on_cluster(hashes: np.ndarray, threshold: int, rotations: bool) -> Candidates:
        if len(hashes) < 2:
            return local_search(hashes, threshold, rotations)
        return search(client, hashes, threshold, rotations, block_rows=block_rows)

    return on_cluster
