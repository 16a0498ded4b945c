"""The search structures return exactly what comparing every pair returns."""

from __future__ import annotations

import numpy as np
import pytest
from bktree import BKTree
from hypothesis import given, settings
from hypothesis import strategies as st

from dedupdb.hashes import hamming
from dedupdb.search import Matches, MultiIndex, brute_force, plan_chunks, to_words

MAX64 = (1 << 64) - 1


def clustered(draw: st.DrawFn, words: int) -> np.ndarray:
    """Random hashes plus noisy copies of some of them (and exact repeats)."""
    bits = 64 * words
    seeds = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=25))
    values = list(seeds)
    for seed in seeds:
        for flips in draw(st.lists(st.lists(st.integers(0, bits - 1), max_size=14), max_size=4)):
            value = seed
            for bit in flips:
                value ^= 1 << bit
            values.append(value)
    return to_words(values, bits)


@st.composite
def hash_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    words = draw(st.sampled_from([1, 1, 1, 4]))
    stored = clustered(draw, words)
    queries = clustered(draw, words)
    # Some queries are near copies of stored hashes, so that cross matches exist.
    picks = draw(st.lists(st.integers(0, len(stored) - 1), max_size=10))
    noise = to_words([1 << draw(st.integers(0, 64 * words - 1)) for _ in picks], 64 * words)
    if picks:
        queries = np.concatenate([queries, stored[picks] ^ noise])
    threshold = draw(st.integers(0, 24 * words))
    return stored, queries, threshold


@settings(max_examples=100, deadline=None)
@given(hash_sets())
def test_self_join_equals_brute_force(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    stored, _, threshold = case
    got = MultiIndex(stored, exhaustive_below=0).search(None, threshold)
    assert len(got) == len(got.unique())  # each pair once
    assert got.as_set() == brute_force(stored, None, threshold).as_set()


@settings(max_examples=100, deadline=None)
@given(hash_sets())
def test_query_join_equals_brute_force(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    stored, queries, threshold = case
    got = MultiIndex(stored, exhaustive_below=0).search(queries, threshold)
    assert len(got) == len(got.unique())
    assert got.as_set() == brute_force(stored, queries, threshold).as_set()


def test_random_hashes_at_scale_equal_brute_force() -> None:
    rng = np.random.default_rng(7)
    stored = rng.integers(0, MAX64, size=(3000, 1), dtype=np.uint64, endpoint=True)
    stored[1500:2000] = stored[:500] ^ (
        np.uint64(1) << rng.integers(0, 64, (500, 1)).astype(np.uint64)
    )
    for threshold in (0, 6, 10, 16):
        index = MultiIndex(stored, exhaustive_below=0)
        assert (
            index.search(None, threshold, workers=2).as_set()
            == brute_force(stored, None, threshold).as_set()
        )


@settings(max_examples=100, deadline=None)
@given(hash_sets(), st.booleans())
def test_small_searches_without_the_kernel_find_the_same_pairs(
    case: tuple[np.ndarray, np.ndarray, int], owned: bool
) -> None:
    """Small searches compare every pair with numpy (no compiled kernel): the same pairs and
    distances as the kernel, each once, a query's own row left out."""
    stored, queries, threshold = case
    owner = np.arange(len(queries), dtype=np.int64) % len(stored) if owned else None
    kernel = MultiIndex(stored, exhaustive_below=0)
    numpy_only = MultiIndex(stored)
    assert len(queries) * len(stored) <= numpy_only.exhaustive_below
    for q in (None, queries):
        got = numpy_only.search(q, threshold, owner=None if q is None else owner)
        want = kernel.search(q, threshold, owner=None if q is None else owner)
        assert len(got) == len(got.unique())
        assert got.as_set() == want.as_set()


def test_a_search_too_large_for_numpy_uses_the_kernel() -> None:
    stored = to_words(range(64), 64)
    index = MultiIndex(stored, exhaustive_below=64 * 64 - 1)
    assert index.search(None, 3).as_set() == brute_force(stored, None, 3).as_set()
    assert index._prepared  # the kernel's tables were built


def test_owner_excludes_a_query_from_its_own_row() -> None:
    stored = to_words([0b1111, 0b1110, 1 << 40], 64)
    queries = stored.copy()
    got = (
        MultiIndex(stored, exhaustive_below=0)
        .search(queries, 2, owner=np.array([0, 1, 2]))
        .as_set()
    )
    assert got == {(0, 1, 1), (1, 0, 1)}


def test_empty_and_single() -> None:
    empty = np.zeros((0, 1), dtype=np.uint64)
    assert len(MultiIndex(empty, exhaustive_below=0).search(None, 10)) == 0
    one = to_words([5], 64)
    assert len(MultiIndex(one, exhaustive_below=0).search(None, 10)) == 0
    assert MultiIndex(one, exhaustive_below=0).search(one, 0).as_set() == {(0, 0, 0)}


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        MultiIndex(to_words([1], 64)).search(None, -1)
    with pytest.raises(ValueError, match="one width"):
        MultiIndex(to_words([1], 64)).search(to_words([1], 256), 3)
    with pytest.raises(ValueError, match="multiple of 64"):
        to_words([1], 32)


def test_to_words_is_lossless() -> None:
    values = [0, 1, MAX64, 1 << 63, (1 << 256) - 1, 12345 << 190]
    words = to_words(values, 256)
    assert words.shape == (6, 4)
    back = [int("".join(f"{int(w):016x}" for w in row), 16) for row in words]
    assert back == values


def test_plan_obeys_the_general_pigeonhole() -> None:
    for bits in (64, 256):
        for threshold in range(0, 40):
            plan = plan_chunks(bits, threshold, 10**6, 10**6)
            assert sum(c.bits for c in plan) == bits
            assert sum(c.radius for c in plan) == threshold - len(plan) + 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, MAX64), max_size=40),
    st.lists(st.integers(0, MAX64), min_size=1, max_size=5),
    st.integers(0, 40),
)
def test_bktree_equals_brute_force(values: list[int], queries: list[int], threshold: int) -> None:
    tree = BKTree((v, i) for i, v in enumerate(values))
    assert len(tree) == len(values)
    for q in queries:
        expected = sorted(
            (hamming(q, v), i) for i, v in enumerate(values) if hamming(q, v) <= threshold
        )
        assert tree.find(q, threshold) == expected


def test_matches_unique_and_concat() -> None:
    part = Matches(np.array([1, 0, 1]), np.array([2, 3, 2]), np.array([4, 5, 4]))
    both = Matches.concat([part, Matches.empty()]).unique()
    assert both.as_set() == {(1, 2, 4), (0, 3, 5)}
    assert both.query.tolist() == [0, 1]
