"""The reviewer's decisions about whole clusters: which copy to keep (or several), or leave it.

``decisions.py`` keeps the pairs a user said are *not* duplicates; this module keeps what a user
decided about clusters that are: another keeper than the suggested one, several copies kept, or
"skip" (leave every copy alone). ``dedupdb serve`` records them; ``plan.plan_actions`` (so
``dedupdb apply`` too) honours them through ``overlay``.

A decision is stored under the cluster's key: a digest of its members' content hashes. The same
pictures give the same key in every later report, whatever the cluster's number; a changed file
or a new copy gives another key, and the cluster is shown for review again. The keepers are kept
as (content hash, path) pairs, so a choice among exact copies (one content hash, several paths)
names the one copy; a keeper that moved makes the decision lapse rather than keep a stranger.

Clusters are read as the report's dataclasses (``report.ReportCluster``) or as the JSON dicts of
``dedupdb report --json`` alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import DedupdbError
from .store import Store
from .store import decisions as stored
from .store.decisions import ReviewRecord

KEEP, SKIP = "keep", "skip"


@dataclass(frozen=True)
class Choice:
    """One stored decision about a cluster."""

    kind: str  # KEEP or SKIP
    keepers: tuple[tuple[str, str], ...]  # (content hash hex, path); the first is the keeper
    label: str
    members: int
    created_at: str


@dataclass(frozen=True)
class _Member:
    image_id: int
    path: str
    content_hash: str


def _members(cluster: Any) -> list[_Member]:
    if isinstance(cluster, dict):
        return [
            _Member(int(m["image_id"]), str(m.get("path", "")), str(m.get("content_hash", "")))
            for m in cluster.get("members", [])
            if isinstance(m, dict) and isinstance(m.get("image_id"), int)
        ]
    return [_Member(m.image_id, m.path, m.content_hash) for m in cluster.members]


def _suggested(cluster: Any) -> Any:
    return cluster.get("keeper") if isinstance(cluster, dict) else cluster.keeper


def key_of(cluster: Any) -> bytes:
    """The cluster's key: the same pictures (with their multiplicity) give the same key."""
    if isinstance(cluster, dict):
        hashes = [m.content_hash for m in _members(cluster)]
    else:  # the report's dataclasses: read directly (100,000s of clusters per report)
        hashes = [m.content_hash for m in cluster.members]
    hashes.sort()
    text = "\n".join(hashes) + "\n"
    return hashlib.blake2b(text.encode("ascii", "replace"), digest_size=16).digest()


def load_choices(store: Store) -> dict[bytes, Choice]:
    """Every stored decision, by cluster key."""
    return {r.cluster_key: _choice(r) for r in stored.review_decisions(store)}


def _choice(record: ReviewRecord) -> Choice:
    return Choice(
        kind=record.kind,
        keepers=record.keepers,
        label=record.label,
        members=record.members,
        created_at=record.created_at.replace(microsecond=0).isoformat() + "Z",
    )


def resolve(cluster: Any, choice: Choice | None) -> tuple[int, list[int]] | None:
    """(keeper id, every kept id) of a KEEP decision as it applies to this cluster, or None
    when there is none or it no longer fits (a keeper is not among the members any more)."""
    if choice is None or choice.kind != KEEP:
        return None
    by_identity = {(m.content_hash, m.path): m.image_id for m in _members(cluster)}
    kept = [by_identity.get(k) for k in choice.keepers]
    if not kept or any(k is None for k in kept):
        return None
    ids = [k for k in kept if k is not None]
    return ids[0], ids


def current(cluster: Any, choices: dict[bytes, Choice]) -> Choice | None:
    """The decision that holds for this cluster now (a lapsed keeper choice does not)."""
    choice = choices.get(key_of(cluster))
    if choice is None:
        return None
    if choice.kind == KEEP and resolve(cluster, choice) is None:
        return None
    return choice


def _row(cluster: Any, kind: str, keepers: Sequence[_Member], now: datetime) -> ReviewRecord:
    members = _members(cluster)
    label = (
        keepers[0].path
        if keepers
        else next((m.path for m in members if m.image_id == _suggested(cluster)), members[0].path)
    )
    return ReviewRecord(
        cluster_key=key_of(cluster),
        kind=kind,
        keepers=tuple((k.content_hash, k.path) for k in keepers),
        members=len(members),
        label=label,
        created_at=now,
    )


def _store(store: Store, rows: list[ReviewRecord]) -> None:
    """Store the decisions, replacing any earlier decision about the same clusters."""
    stored.save_review_decisions(store, rows)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def choose_keepers(store: Store, cluster: Any, keepers: Sequence[int]) -> Choice:
    """Keep these members (image ids; the first is the keeper); the others are duplicates.

    Raises ``DedupdbError`` when an id is not one of the cluster's members or none is given.
    """
    members = {m.image_id: m for m in _members(cluster)}
    if not keepers:
        raise DedupdbError("choose at least one copy to keep")
    unknown = [k for k in keepers if k not in members]
    if unknown:
        raise DedupdbError(
            f"image {unknown[0]} is not a member of this cluster",
            "reload the page: the report may have changed",
        )
    ordered = list(dict.fromkeys(keepers))
    row = _row(cluster, KEEP, [members[k] for k in ordered], _now())
    _store(store, [row])
    return _choice(row)


def skip(store: Store, cluster: Any) -> Choice:
    """Leave this cluster alone: no copy of it is acted on, and it is not shown for review."""
    row = _row(cluster, SKIP, [], _now())
    _store(store, [row])
    return _choice(row)


def accept_suggested(store: Store, clusters: Iterable[Any]) -> int:
    """Record the suggested keeper as the decision of every given cluster not decided yet;
    returns how many were recorded."""
    choices = load_choices(store)
    now = _now()
    rows = []
    for cluster in clusters:
        if current(cluster, choices) is not None:
            continue
        keeper = [m for m in _members(cluster) if m.image_id == _suggested(cluster)]
        if keeper:
            rows.append(_row(cluster, KEEP, keeper, now))
    if rows:
        _store(store, rows)
    return len(rows)


def forget(store: Store, cluster: Any) -> bool:
    """Forget the decision about this cluster (it is shown for review again)."""
    return stored.forget_review_decision(store, key_of(cluster))


@dataclass(frozen=True)
class Overlaid:
    """A report's clusters with the decisions applied (see ``overlay``)."""

    report: dict[str, Any]
    chosen: int  # clusters whose keeper (and kept copies) come from a decision
    left_alone: int  # clusters left out: skipped, or undecided with ``reviewed_only``


def overlay(
    report: dict[str, Any], choices: dict[bytes, Choice], *, reviewed_only: bool = False
) -> Overlaid:
    """The report (its JSON dict) as the decisions say to act on it.

    A decided cluster gets the chosen keeper, and its other kept copies are taken out of its
    members (so nothing acts on them); a skipped cluster is left out. With ``reviewed_only``,
    clusters without a decision are left out too. The given dict is not changed.
    """
    clusters = []
    chosen = left_alone = 0
    for cluster in report.get("clusters", []):
        if not isinstance(cluster, dict):
            clusters.append(cluster)
            continue
        choice = current(cluster, choices) if choices else None
        resolved = resolve(cluster, choice)
        if choice is not None and choice.kind == SKIP:
            left_alone += 1
            continue
        if resolved is None:
            if reviewed_only:
                left_alone += 1
            else:
                clusters.append(cluster)
            continue
        keeper, kept = resolved
        also_kept = set(kept) - {keeper}
        changed = dict(cluster)
        changed["keeper"] = keeper
        changed["members"] = [
            m for m in cluster.get("members", []) if m.get("image_id") not in also_kept
        ]
        clusters.append(changed)
        chosen += 1
    result = dict(report)
    result["clusters"] = clusters
    return Overlaid(result, chosen, left_alone)
