"""Pairs -> clusters of duplicates, without chaining unrelated pictures together.

Joining every pair transitively (connected components) chains look-alikes: A is a copy of B,
B of C, yet A and C are different pictures. dedupdb's clusters are complete-linkage instead:
every two members of a cluster are themselves a pair (within the threshold, past every guard),
so a cluster's ``max_distance`` never exceeds the threshold and a user can trust any member to
stand for the others. Cropped copies are the exception (see ``attach_crops``): they match
their picture's centre, not its other copies' full frames, and join its cluster by crop pairs.

A connected group of pairs that is not complete is split greedily and deterministically: the
member with the most partners (ties: the smaller sum of distances, then the lower id) seeds a
cluster; the candidates are its partners, and the cluster repeatedly takes the candidate paired
with the most other candidates (ties: nearer the seed, then the lower id) and keeps as
candidates only that one's partners, so one odd copy (a tilted one, say) does not shut out
every copy it fails to match; then the same with what is left. A member left alone is
in no cluster. Then each member moves to another of the group's clusters when it is paired with
all of that cluster's members and fits it better: a smaller mean of (Hamming distance + tone
difference / ``TONE_PER_BIT``) over the members. This is what puts a grayscale copy, which
matches the light, dark and recoloured versions of its picture equally well on the hashes, with
the version whose tones it has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .match import CROP, INSIDE_A_SCREENSHOT, UNCROP, Pair

# How many luma levels (0..255) of tone difference weigh as much as one bit of hash distance
# when a member is placed between clusters.
TONE_PER_BIT = 4.0
MAX_PASSES = 8


@dataclass
class Cluster:
    """Images that are all duplicates of each other."""

    members: list[int]  # image ids, sorted
    exact: bool  # all members have one content hash
    max_distance: int  # largest Hamming distance between any two members
    pairs: list[Pair]  # the pairs that built it


def build_clusters(pairs: list[Pair]) -> list[Cluster]:
    """Complete-linkage clusters of the pairs: exact clusters first, then by lowest member id.

    Crop pairs (``match.CROP``, ``match.UNCROP``) take no part in the complete linkage; they
    attach groups of cropped copies to the cluster of their picture afterwards
    (``attach_crops``).
    """
    # Pairs of the local-feature stage (``kind`` set) were verified by their geometry: unlike
    # a crop window's hash, they link copies to each other as well as to their picture, so
    # they take part in the complete linkage, which keeps one wrong pair from chaining two
    # pictures' whole groups together.
    # A screenshot shows its picture, not the picture's other copies (its crops): it joins
    # the picture's cluster as a cropped copy does (``attach_crops``), not by complete linkage.
    crops = [p for p in pairs if p.transform in (CROP, UNCROP)]
    frames = [
        p
        for p in pairs
        if p.transform not in (CROP, UNCROP) or p.kind not in (None, INSIDE_A_SCREENSHOT)
    ]
    clusters = _complete_clusters(frames)
    # Attached groups are groups too: a picture whose cropped copies joined one of its copies'
    # cluster may now be the whole of that larger group (repeat until nothing moves).
    for _ in range(MAX_PASSES):
        joined = attach_crops(clusters, crops, frames)
        if [c.members for c in joined] == [c.members for c in clusters]:
            break
        clusters = joined
    clusters.sort(key=lambda c: (not c.exact, c.members[0]))
    return clusters


def _complete_clusters(pairs: list[Pair]) -> list[Cluster]:
    partners: dict[int, dict[int, Pair]] = defaultdict(dict)
    for p in pairs:
        if p.a == p.b:
            continue
        partners[p.a][p.b] = p
        partners[p.b][p.a] = p
    clusters = []
    for component in _components(partners):
        if len(component) == 2:  # most clusters: one pair (the general path gives the same)
            pair = partners[component[0]][component[1]]
            clusters.append(Cluster(component, pair.exact, pair.distance, [pair]))
            continue
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
    return clusters


def attach_crops(
    clusters: list[Cluster], crops: list[Pair], frames: Sequence[Pair] = ()
) -> list[Cluster]:
    """Join each group of cropped copies to the cluster of the picture they were cropped from.

    A crop matches its original's central window, not the original's other copies' full
    frames, so crops cannot join a complete-linkage cluster; and a crop pair is the weaker
    clue (a window is a part of a picture). A group (a cluster, or a picture in none) is
    attached to a cluster when at least half of all (group member, cluster member) pairs are
    pairs: crop pairs with the group's member as the cropped side, or full-frame pairs
    (``frames``; a 10 % crop may also match some copies' full frames) that complete linkage
    left between the two, or when at least half of the group's members and half of the
    cluster's have such a pair across (crops of several shapes: a copy cut at the top and
    bottom is no whole of the centred crops of its picture, which leaves most combinations
    unpaired). A crop of a picture matches the windows of most of its copies, while a
    look-alike that only happens to match one window does not carry its cluster along. A
    group that could join several clusters (two pictures sharing one centre) joins the one it
    has the most crop pairs with (then the smallest mean distance). Attachments chain only
    along crops of crops (a crop of a crop of a picture is in that picture's cluster). Pairs,
    ``exact`` and ``max_distance`` of a joined cluster cover the crop pairs that joined it.
    ``build_clusters`` repeats this until nothing moves: once crops joined a copy's cluster,
    the picture they were cut from, left alone by complete linkage, can join that group.
    """
    if not crops:
        return clusters
    groups: list[Cluster] = list(clusters)
    group_of: dict[int, int] = {m: i for i, c in enumerate(groups) for m in c.members}
    for p in crops:
        for x in (p.a, p.b):
            if x not in group_of:
                group_of[x] = len(groups)
                groups.append(Cluster(members=[x], exact=False, max_distance=0, pairs=[]))
    # links[child][parent] = the crop pairs whose cropped side is in child, whole in parent
    links: dict[int, dict[int, list[Pair]]] = defaultdict(lambda: defaultdict(list))
    for p in crops:
        crop, whole = (p.b, p.a) if p.transform == CROP else (p.a, p.b)
        if p.kind == INSIDE_A_SCREENSHOT:  # the picture is the part: the screenshot joins it
            crop, whole = whole, crop
        child, parent = group_of[crop], group_of[whole]
        if child != parent:
            links[child][parent].append(p)
    # Full-frame pairs between groups that crop pairs link, counted both ways, and which
    # members they touch.
    between: dict[tuple[int, int], int] = defaultdict(int)
    touched: dict[tuple[int, int], set[int]] = defaultdict(set)  # (group, other) -> members
    for p in frames:
        ga, gb = group_of.get(p.a), group_of.get(p.b)
        if ga is not None and gb is not None and ga != gb:
            between[ga, gb] += 1
            between[gb, ga] += 1
            touched[ga, gb].add(p.a)
            touched[gb, ga].add(p.b)
    parent_of: dict[int, int] = {}
    for child, by_parent in links.items():
        members = groups[child].members
        best: tuple[int, float, int] | None = None
        for parent, found in by_parent.items():
            paired = len(found) + between[child, parent]
            size = len(groups[parent].members)
            # Members of each side with a pair to the other (crop pairs, child side cropped,
            # or full frames): half of each side is enough, as half of all combinations is.
            mine = touched[child, parent] | {p.a if group_of[p.a] == child else p.b for p in found}
            theirs = touched[parent, child] | {
                p.a if group_of[p.a] == parent else p.b for p in found
            }
            # Screenshots whose every member shows a picture of the cluster: it shows that
            # picture, not its other copies, which a large cluster (the picture with its crops
            # and tilts) has most of.
            shows = {
                p.a if group_of[p.a] == child else p.b
                for p in found
                if p.kind == INSIDE_A_SCREENSHOT
            }
            if (
                2 * paired >= len(members) * size
                or (2 * len(mine) >= len(members) and 2 * len(theirs) >= size)
                or len(shows) == len(members)
            ):
                mean = sum(p.distance for p in found) / len(found)
                key = (-len(found), mean, parent)
                if best is None or key < best:
                    best = key
        if best is not None:
            parent_of[child] = best[2]
    if not parent_of:
        return clusters
    root = list(range(len(groups)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    used: list[Pair] = []
    for child, parent in sorted(parent_of.items()):
        root[find(child)] = find(parent)
        used.extend(links[child][parent])
    merged: dict[int, list[Cluster]] = defaultdict(list)
    for i, group in enumerate(groups):
        merged[find(i)].append(group)
    extra: dict[int, list[Pair]] = defaultdict(list)
    for p in used:
        extra[find(group_of[p.a])].append(p)
    out = []
    for top, parts in merged.items():
        members = sorted(m for g in parts for m in g.members)
        if len(members) < 2:
            continue
        if len(parts) == 1:
            out.append(parts[0])
            continue
        inside = sorted({p for g in parts for p in g.pairs} | set(extra[top]),
                        key=lambda p: (p.a, p.b))  # fmt: skip
        out.append(
            Cluster(
                members=members,
                exact=False,
                max_distance=max(p.distance for p in inside),
                pairs=inside,
            )
        )
    return out


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
        # Candidates: paired with every member taken so far. Take next the one that keeps the
        # most candidates (ties: nearer the seed, then lower id), so one odd copy (a tilted
        # one, say) does not shut out every copy it fails to match.
        candidates = {y for y in partners[seed] if y in left}
        while candidates:
            chosen = min(candidates, key=_ranking(candidates, seed, partners))
            cluster.append(chosen)
            candidates = {z for z in candidates if z != chosen and z in partners[chosen]}
        left.difference_update(cluster)
        if len(cluster) > 1:
            out.append(cluster)
    _refine(out, partners)
    return [sorted(c) for c in out]


def _ranking(
    candidates: set[int], seed: int, partners: dict[int, dict[int, Pair]]
) -> Callable[[int], tuple[int, int, int]]:
    """Sort key for the next member of a cluster: most candidates kept, then nearest the seed,
    then lowest id."""

    def key(y: int) -> tuple[int, int, int]:
        kept = sum(1 for z in candidates if z in partners[y])
        return (-kept, partners[seed][y].distance, y)

    return key


def _fit(x: int, others: list[int], partners: dict[int, dict[int, Pair]]) -> float:
    """How well ``x`` fits with ``others`` (lower is better)."""
    costs = [partners[x][y].distance + partners[x][y].tone / TONE_PER_BIT for y in others]
    return sum(costs) / len(costs)


def _refine(clusters: list[list[int]], partners: dict[int, dict[int, Pair]]) -> None:
    """Move members to another cluster of theirs that they fit better (in place)."""
    for _ in range(MAX_PASSES):
        moved = False
        for here in clusters:
            for x in sorted(here):
                if len(here) <= 2:
                    break
                rest = [y for y in here if y != x]
                best, target = _fit(x, rest, partners), None
                for there in clusters:
                    if there is here or not all(y in partners[x] for y in there):
                        continue
                    cost = _fit(x, there, partners)
                    if cost < best - 1e-9:
                        best, target = cost, there
                if target is not None:
                    here.remove(x)
                    target.append(x)
                    moved = True
        if not moved:
            return
