"""The review list: each cluster described once per report, then filtered, sorted and paged.

Everything here is pure: a ``Report`` and the decisions in, lists out. Describing 100,000
clusters happens once, when the report is (re)built; a page then costs one filter pass over the
descriptions and one sort (cached per sort order), see benchmarks/bench_serve.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import review
from ..report import Member, Report, ReportCluster

# Kinds of copy, as badges: what a duplicate is to its keeper.
EXACT, ROTATED, MIRRORED, CROPPED, TILTED, SCREENSHOT, RECOLOURED, NEAR = (
    "exact", "rotated", "mirrored", "cropped", "tilted", "screenshot", "recoloured", "near",
)  # fmt: skip
KINDS = (EXACT, ROTATED, MIRRORED, CROPPED, TILTED, SCREENSHOT, RECOLOURED, NEAR)
# The badge of a pair that says what kind of copy it is (``ReportPair.kind``, in the words of
# ``localmatch``); a kind not listed here is badged as a crop (a part of the other).
_PAIR_BADGES = {"tilted copy": TILTED, "picture inside a screenshot": SCREENSHOT}
SORTS = ("space", "size", "date", "folder", "kind")
STATES = ("todo", "decided", "all")
PAGE_SIZE = 50
# Aspect ratios further apart than this are differently framed (a crop), not rounding.
_ASPECT_TOLERANCE = 0.02
_ROTATIONS = frozenset({"rot90", "rot180", "rot270"})
_CROP_PAIRS = frozenset({"crop", "uncrop"})


def member_kinds(
    cluster: ReportCluster, member: Member, keeper: Member | None = None
) -> tuple[str, ...]:
    """What this member is to its cluster's keeper: exact, rotated, mirrored, cropped,
    recoloured, or a near copy (re-encoded, resized). The keeper itself has none.

    Cropped: its picture's aspect ratio differs from the keeper's, or a crop match joined it.
    Recoloured: the ranking found its colours off the cluster's consensus (the ``unedited``
    score part below 1 while the framing agrees).
    """
    if keeper is None:
        keeper = next(m for m in cluster.members if m.image_id == cluster.keeper)
    return _kinds(member, keeper, _aspect(keeper), _cropped_ids(cluster))


def _cropped_ids(cluster: ReportCluster) -> dict[int, str]:
    """The members a crop match joined (most clusters have none), with their badge: CROPPED,
    or the kind their pair names (``_PAIR_BADGES``), taken from a pair with the keeper first."""
    badges: dict[int, str] = {}
    pairs = [p for p in cluster.pairs if p.transform in _CROP_PAIRS]
    if len(pairs) > 1:
        pairs.sort(key=lambda p: cluster.keeper not in (p.a, p.b))
    for pair in pairs:
        badge = _PAIR_BADGES.get(pair.kind or "", CROPPED)
        for image_id in (pair.a, pair.b):
            badges.setdefault(image_id, badge)
    return badges


def _kinds(
    member: Member, keeper: Member, keeper_aspect: float | None, cropped_ids: dict[int, str]
) -> tuple[str, ...]:
    if member.image_id == keeper.image_id:
        return ()
    if member.content_hash and member.content_hash == keeper.content_hash:
        return (EXACT,)
    kinds: list[str] = []
    if member.transform in _ROTATIONS:
        kinds.append(ROTATED)
    elif member.transform != "identity":
        kinds.append(MIRRORED)
    aspect = _aspect(member)
    cropped = aspect is not None and keeper_aspect is not None
    if member.image_id in cropped_ids:
        kinds.append(cropped_ids[member.image_id])
    elif cropped and abs(aspect - keeper_aspect) > _ASPECT_TOLERANCE:  # type: ignore[operator]
        kinds.append(CROPPED)
    elif member.score_parts.get("unedited", 1.0) < 0.999 and member.transform == "identity":
        kinds.append(RECOLOURED)
    return tuple(kinds) or (NEAR,)


def _aspect(member: Member) -> float | None:
    width = member.picture_width or member.width
    height = member.picture_height or member.height
    if not width or not height:
        return None
    # Upright-independent: a rotated copy has the inverse ratio.
    return max(width, height) / min(width, height)


@dataclass(frozen=True)
class ClusterInfo:
    """One cluster as the list shows and filters it."""

    cluster: ReportCluster
    raw_key: bytes  # review.key_of: the pictures' identity, stable across rebuilds
    key: str  # its hex: the cluster's address in URLs
    kinds: frozenset[str]
    badges: dict[int, tuple[str, ...]]  # image id -> kinds
    folder: str  # the keeper's folder
    date: str  # the keeper's date taken, else its modification time (ISO)
    largest: int  # the largest member's size
    text: str = field(repr=False)  # every path, lower case, for the search box

    @property
    def keeper(self) -> Member:
        return next(m for m in self.cluster.members if m.image_id == self.cluster.keeper)


def describe(cluster: ReportCluster) -> ClusterInfo:
    keeper = next(m for m in cluster.members if m.image_id == cluster.keeper)
    keeper_aspect, cropped_ids = _aspect(keeper), _cropped_ids(cluster)
    badges = {m.image_id: _kinds(m, keeper, keeper_aspect, cropped_ids) for m in cluster.members}
    kinds = frozenset(k for b in badges.values() for k in b)
    raw_key = review.key_of(cluster)
    return ClusterInfo(
        cluster=cluster,
        raw_key=raw_key,
        key=raw_key.hex(),
        kinds=kinds,
        badges=badges,
        folder=os.path.dirname(keeper.path),
        date=keeper.taken_at or _iso(keeper.mtime_ns),
        largest=max(m.size for m in cluster.members),
        text="\n".join(m.path for m in cluster.members).lower(),
    )


def _iso(mtime_ns: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def describe_report(report: Report) -> list[ClusterInfo]:
    return [describe(c) for c in report.clusters]


_KIND_ORDER = {kind: n for n, kind in enumerate(KINDS)}


def _sort_key(name: str) -> Callable[[ClusterInfo], Any]:
    if name == "size":
        return lambda i: -i.largest
    if name == "folder":
        return lambda i: (i.folder.lower(), -i.cluster.reclaimable_bytes)
    if name == "kind":
        return lambda i: (min((_KIND_ORDER[k] for k in i.kinds), default=len(KINDS)),
                          -i.cluster.reclaimable_bytes)  # fmt: skip
    return lambda i: -i.cluster.reclaimable_bytes


@dataclass(frozen=True)
class Query:
    """What the list shows: a filter, a sort order and a page (all from the URL)."""

    sort: str = "space"
    kind: str = ""  # one of KINDS, or "" for any
    state: str = "todo"
    q: str = ""  # search: every word must occur in one of the cluster's paths
    page: int = 1

    @classmethod
    def parse(cls, params: dict[str, str]) -> Query:
        def pick(name: str, allowed: Sequence[str], default: str) -> str:
            value = params.get(name, default)
            return value if value in allowed else default

        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            sort=pick("sort", SORTS, "space"),
            kind=pick("kind", ("", *KINDS), ""),
            state=pick("state", STATES, "todo"),
            q=params.get("q", "")[:200],
            page=page,
        )

    def params(self, **changes: object) -> dict[str, str]:
        """The URL parameters of this query with some changed (page 1 unless given)."""
        values = {"sort": self.sort, "kind": self.kind, "state": self.state, "q": self.q}
        values.update({k: str(v) for k, v in changes.items()})
        return {k: str(v) for k, v in values.items() if v not in ("", None)}


class Listing:
    """The clusters of one report, with the sort orders computed on first use."""

    def __init__(self, infos: list[ClusterInfo]) -> None:
        self.infos = infos
        self.by_key = {info.key: info for info in infos}
        self._orders: dict[str, list[ClusterInfo]] = {"space": infos}

    def ordered(self, sort: str) -> list[ClusterInfo]:
        if sort == "date" and sort not in self._orders:  # newest first; ties keep their order
            self._orders[sort] = sorted(self.infos, key=lambda i: i.date, reverse=True)
        elif sort not in self._orders:
            self._orders[sort] = sorted(self.infos, key=_sort_key(sort))
        return self._orders[sort]

    def select(self, query: Query, decided: Callable[[ClusterInfo], bool]) -> list[ClusterInfo]:
        """The clusters the query's filter keeps, in its sort order."""
        words = query.q.lower().split()
        result = []
        for info in self.ordered(query.sort):
            if query.kind and query.kind not in info.kinds:
                continue
            if words and not all(w in info.text for w in words):
                continue
            if query.state != "all" and decided(info) != (query.state == "decided"):
                continue
            result.append(info)
        return result


@dataclass(frozen=True)
class Page:
    items: list[ClusterInfo]
    number: int
    pages: int
    total: int
    reclaimable: int  # bytes, of every cluster the filter keeps

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.items else 0


def page_of(selected: list[ClusterInfo], number: int, size: int = PAGE_SIZE) -> Page:
    pages = max(1, -(-len(selected) // size))
    number = min(number, pages)
    start = (number - 1) * size
    return Page(
        items=selected[start : start + size],
        number=number,
        pages=pages,
        total=len(selected),
        reclaimable=sum(i.cluster.reclaimable_bytes for i in selected),
    )
