"""Synthetic 64-bit pHash rows with the structure of a real photo collection, made block by
block so that a cluster can build a set larger than one machine's memory (each worker makes
its own blocks; the client never holds the whole set).

What real collections have and uniform random bits lack (both make the search harder):

- skewed bits: each of the 64 bits is set with its own probability (0.2 to 0.8), so hashes
  crowd together and buckets are uneven;
- dense near-duplicate groups: most pictures stand alone, but group sizes are heavy-tailed
  (bursts, edits, re-saves: up to 200 near copies, 0-6 bits from their picture);
- turned copies: a fifth of the copies are rotated or mirrored (their 8 variants permuted, as
  a turned picture's hashes are);
- groups across blocks: a twentieth of each block copies pictures of the previous block.
"""

from __future__ import annotations

import numpy as np

from ..hashes import DIHEDRAL, VARIANTS

__all__ = ["synthetic_block", "variant_words"]

_BITS = 64
# Each variant as a permutation of a bit grid's 64 positions (derived from ``hashes.DIHEDRAL``).
_PERMUTATIONS = np.stack(
    [transform(np.arange(_BITS).reshape(8, 8)).ravel() for transform in DIHEDRAL]
)
COPIED_FROM_PREVIOUS = 0.05
TURNED = 0.2
MAX_FLIPS = 6


def variant_words(grids: np.ndarray) -> np.ndarray:
    """``(n, 64)`` bool bit grids (row-major 8x8) -> ``(n, 8, 1)`` uint64: the 8 dihedral
    variants' hashes in ``match.Rows.hashes`` form (most significant bit first)."""
    variants = grids[:, _PERMUTATIONS]  # (n, 8, 64)
    packed = np.packbits(variants, axis=2)  # (n, 8, 8) bytes, big-endian per variant
    return packed.view(">u8").astype(np.uint64).reshape(len(grids), VARIANTS, 1)


def _bit_odds(seed: int) -> np.ndarray:
    odds: np.ndarray = np.random.default_rng([seed, 0xB175]).uniform(0.2, 0.8, _BITS)
    return odds


def _pictures(seed: int, block: int, count: int) -> np.ndarray:
    """The block's pictures (the heads of its groups), reproducible from (seed, block)."""
    rng = np.random.default_rng([seed, block, 0])
    grids: np.ndarray = rng.random((count, _BITS)) < _bit_odds(seed)
    return grids


def _group_sizes(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Heavy-tailed group sizes summing to ``rows``: mostly 1, Zipf-like bursts up to 200."""
    sizes = np.minimum(rng.zipf(2.6, rows), 200)
    ends = np.cumsum(sizes)
    cut = int(np.searchsorted(ends, rows))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(ends[cut]) - rows
    kept: np.ndarray = sizes[sizes > 0]
    return kept


def synthetic_block(seed: int, block: int, rows: int) -> np.ndarray:
    """Block ``block`` of a synthetic collection: ``(rows, 8, 1)`` uint64 hashes (the 8
    variants of each row), the same for the same arguments on any machine."""
    rng = np.random.default_rng([seed, block, 1])
    from_previous = int(rows * COPIED_FROM_PREVIOUS) if block > 0 else 0
    sizes = _group_sizes(rng, rows - from_previous)
    heads = _pictures(seed, block, len(sizes))
    source = np.repeat(np.arange(len(sizes)), sizes)
    grids = heads[source]
    if from_previous:
        previous = _pictures(seed, block - 1, from_previous)
        grids = np.concatenate([grids, previous[rng.integers(0, from_previous, from_previous)]])
    # Every row but a group's first is a near copy: 0-6 bits flipped.
    first = np.zeros(len(grids), dtype=bool)
    first[np.concatenate([[0], np.cumsum(sizes)[:-1]])] = True
    copies = np.flatnonzero(~first)
    flips = rng.integers(0, MAX_FLIPS + 1, len(copies))
    for count in range(1, MAX_FLIPS + 1):
        chosen = copies[flips == count]
        positions = rng.random((len(chosen), _BITS)).argsort(axis=1)[:, :count]
        grids[chosen[:, None], positions] ^= True
    turned = copies[rng.random(len(copies)) < TURNED]
    variant = rng.integers(1, VARIANTS, len(turned))
    # A copy turned by ``v`` is its grid under ``DIHEDRAL[v]``; its 8 variants follow from it.
    grids[turned] = np.take_along_axis(grids[turned], _PERMUTATIONS[variant], axis=1)
    words = variant_words(grids)
    order = rng.permutation(len(grids))
    out: np.ndarray = words[order]
    return out
