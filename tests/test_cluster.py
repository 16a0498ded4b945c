"""Clusters: complete linkage (no chaining), deterministic, built from real photos."""

from __future__ import annotations

import itertools
from pathlib import Path

from conftest import photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dedupdb.cluster import Cluster, build_clusters
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import MatchOptions, Pair
from dedupdb.report import find_clusters
from dedupdb.store import Store


def pair(a: int, b: int, distance: int = 3, exact: bool = False) -> Pair:
    a, b = min(a, b), max(a, b)
    return Pair(a, b, 0 if exact else distance, exact, "identity")


def test_a_complete_group_is_one_cluster() -> None:
    pairs = [pair(1, 2, 2), pair(1, 3, 5), pair(2, 3, 4)]
    [cluster] = build_clusters(pairs)
    assert cluster.members == [1, 2, 3]
    assert cluster.max_distance == 5
    assert not cluster.exact
    assert cluster.pairs == pairs


def test_a_chain_is_not_one_cluster() -> None:
    # A~B and B~C, but A and C are not a pair: A and C never share a cluster.
    clusters = build_clusters([pair(1, 2, 4), pair(2, 3, 6)])
    assert [c.members for c in clusters] == [[1, 2]]
    longer = build_clusters([pair(i, i + 1) for i in range(1, 10)])
    for c in longer:
        assert len(c.members) == 2


def test_a_bridge_between_two_groups_is_cut() -> None:
    left = [pair(a, b, 2) for a, b in itertools.combinations([1, 2, 3, 4], 2)]
    right = [pair(a, b, 2) for a, b in itertools.combinations([5, 6, 7], 2)]
    clusters = build_clusters([*left, *right, pair(4, 5, 9)])
    assert [c.members for c in clusters] == [[1, 2, 3, 4], [5, 6, 7]]


def test_exact_clusters_come_first() -> None:
    clusters = build_clusters([pair(1, 2), pair(3, 4, exact=True)])
    assert [(c.members, c.exact, c.max_distance) for c in clusters] == [
        ([3, 4], True, 0),
        ([1, 2], False, 3),
    ]


def test_no_pairs_no_clusters() -> None:
    assert build_clusters([]) == []


@st.composite
def pair_lists(draw: st.DrawFn) -> list[Pair]:
    n = draw(st.integers(2, 12))
    edges = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
    return [pair(a, b, draw(st.integers(0, 10))) for a, b in edges if a != b]


@settings(max_examples=150, deadline=None)
@given(pair_lists(), st.randoms())
def test_clusters_are_complete_disjoint_and_deterministic(pairs: list[Pair], rnd: object) -> None:
    unique = list({(p.a, p.b): p for p in pairs}.values())
    clusters = build_clusters(unique)
    seen: set[int] = set()
    known = {(p.a, p.b): p for p in unique}
    for c in clusters:
        assert c.members == sorted(c.members) and len(c.members) >= 2
        assert not seen & set(c.members)
        seen |= set(c.members)
        for a, b in itertools.combinations(c.members, 2):
            assert (a, b) in known  # complete: every two members are a pair
        assert c.max_distance == max(known[(a, b)].distance
                                     for a, b in itertools.combinations(c.members, 2))  # fmt: skip
    shuffled = list(unique)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert build_clusters(shuffled) == clusters


def test_find_clusters_on_real_photos(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    for seed in (1, 2):
        picture = photo(seed, (400, 300))
        picture.save(root / f"p{seed}.png")
        picture.save(root / f"p{seed}-q70.jpg", quality=70)
        picture.resize((200, 150)).save(root / f"p{seed}-small.jpg", quality=90)
        picture.transpose(Image.Transpose.ROTATE_270).save(root / f"p{seed}-rot.jpg", quality=90)
        (root / f"p{seed}-copy.png").write_bytes((root / f"p{seed}.png").read_bytes())
    photo(3).save(root / "alone.jpg", quality=90)
    index(store, root, IndexOptions(workers=1))
    clusters = find_clusters(store, MatchOptions())
    names = _names(store)
    got = sorted(sorted(names[m] for m in c.members) for c in clusters)
    assert got == [
        ["p1-copy.png", "p1-q70.jpg", "p1-rot.jpg", "p1-small.jpg", "p1.png"],
        ["p2-copy.png", "p2-q70.jpg", "p2-rot.jpg", "p2-small.jpg", "p2.png"],
    ]
    assert all(isinstance(c, Cluster) and c.max_distance <= 10 for c in clusters)
    assert not any(c.exact for c in clusters)


def _names(store: Store) -> dict[int, str]:
    from sqlalchemy import select

    from dedupdb.store.schema import Image as Row

    with store.session() as session:
        return dict(session.execute(select(Row.id, Row.display_path)).all())


def test_screenshots_join_a_large_cluster_of_the_picture_they_show() -> None:
    """A screenshot and its mirror image (a pair by their full frames) each show picture 1, a
    complete cluster with three copies the screenshots' inner picture does not match (crops,
    tilts): they join it, though they pair with one of its four members only."""
    from dedupdb.match import CROP, INSIDE_A_SCREENSHOT

    region = (0.2, 0.2, 0.8, 0.5)
    pairs = [Pair(x, y, 4, False, "identity") for x, y in itertools.combinations(range(1, 5), 2)]
    pairs.append(Pair(5, 6, 2, False, "mirror"))
    for shot in (5, 6):  # the picture (1) is the part: UNCROP, as a is the part
        pairs.append(Pair(1, shot, 3, False, "uncrop", kind=INSIDE_A_SCREENSHOT, region=region))
    clusters = build_clusters(sorted(pairs, key=lambda p: (p.a, p.b)))
    assert [c.members for c in clusters] == [[1, 2, 3, 4, 5, 6]]
    # A crop pair of the same shape (not a screenshot) does not carry its group along.
    plain = [p for p in pairs if p.kind is None]
    plain += [Pair(1, shot, 3, False, CROP) for shot in (5, 6)]
    assert sorted(c.members for c in build_clusters(plain)) == [[1, 2, 3, 4], [5, 6]]
