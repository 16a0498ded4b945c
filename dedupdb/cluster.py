"""Pairs -> clusters of duplicates, without chaining unrelated pictures together.

Joining every pair transitively (connected components) chains look-alikes: A is a copy of B,
B of C, yet A and C are different pictures. dedupdb's clusters are complete-linkage instead:
every two members of a cluster are themselves a pair (within the threshold, past every guard),
so a cluster's ``max_distance`` never exceeds the threshold and a user can trust any member to
stand for the others.

A connected group of pairs that is not complete is split greedily and deterministically: the
member with the most partners (ties: the smaller sum of distances, then the lower id) seeds a
cluster, which takes each of its partners in order of distance (then id) when that partner is
paired with every member taken so far; then the same with what is left. A member left alone is
in no cluster.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .match import MatchOptions, Pair, find_pairs
from .store import Store


@dataclass
class Cluster:
    """Images that are all duplicates of each other."""

    members: list[int]  # image ids, sorted
    exact: bool  # all members have one content hash
    max_distance: int  # largest Hamming distance between any two members
    pairs: list[Pair]  # the pairs that built it


def build_clusters(pairs: list[Pair]) -> list[Cluster]:
    """Complete-linkage clusters of the pairs: exact clusters first, then by lowest member id."""
    partners: dict[int, dict[int, Pair]] = defaultdict(dict)
    for p in pairs:
        if p.a == p.b:
            continue
        partners[p.a][p.b] = p
        partners[p.b][p.a] = p
    clusters = []
    for component in _components(partners):
        for members in _split(component, partners):
            inside = sorted(
                {partners[x][y] for x in members for y in members if x < y},
                key=lambda p: (p.a, p.b),
            )
            clusters.append(
                Cluster(
                    members=sorted(members),
                    exact=all(p.exact for p in inside),
                    max_distance=max(p.distance for p in inside),
                    pairs=inside,
                )
            )
    clusters.sort(key=lambda c: (not c.exact, c.members[0]))
    return clusters


def find_clusters(store: Store, options: MatchOptions) -> list[Cluster]:
    """The database's duplicate clusters: ``find_pairs`` then ``build_clusters``."""
    return build_clusters(find_pairs(store, options))


def _components(partners: dict[int, dict[int, Pair]]) -> list[list[int]]:
    seen: set[int] = set()
    out = []
    for start in sorted(partners):
        if start in seen:
            continue
        seen.add(start)
        stack, component = [start], []
        while stack:
            node = stack.pop()
            component.append(node)
            for other in partners[node]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        out.append(sorted(component))
    return out


def _split(component: list[int], partners: dict[int, dict[int, Pair]]) -> list[list[int]]:
    """The component as complete clusters (itself, when it already is one)."""
    size = len(component)
    if all(len(partners[x]) == size - 1 for x in component):
        return [component]
    left = set(component)
    out = []
    while len(left) > 1:

        def rank(x: int) -> tuple[int, int, int]:
            mates = [p.distance for y, p in partners[x].items() if y in left]
            return (-len(mates), sum(mates), x)

        seed = min(left, key=rank)
        cluster = [seed]
        mates = sorted(
            (y for y in partners[seed] if y in left),
            key=lambda y: (partners[seed][y].distance, y),
        )
        for y in mates:
            if all(y in partners[x] for x in cluster):
                cluster.append(y)
        left.difference_update(cluster)
        if len(cluster) > 1:
            out.append(sorted(cluster))
    return out
