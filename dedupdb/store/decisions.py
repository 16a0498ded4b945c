"""The user's decisions: pairs of pictures that are not duplicates (by content hash), the
reviewer's choices about whole clusters (by cluster key), and the last report remembered for
``--cluster ID`` and ``apply`` (settings rows)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import CursorResult, delete, select, tuple_

from .engine import Store
from .schema import Image, NotDuplicate, ReviewDecision, Root

_CHUNK = 500
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# ----------------------------------------------------------------------------- not duplicates


@dataclass(frozen=True)
class Picture:
    """An image's content and a path to show for it (root and relative path joined)."""

    image_id: int
    content_hash: bytes
    root: str
    display_path: str


@dataclass(frozen=True)
class NotDuplicatePair:
    """One "not duplicates" decision, by content (``hash_a`` is the smaller)."""

    hash_a: bytes
    hash_b: bytes
    path_a: str
    path_b: str
    created_at: datetime


def pictures(store: Store, image_ids: Sequence[int]) -> dict[int, Picture]:
    """These images' content hashes and paths, by id; unknown ids are left out."""
    with store.session() as session:
        return {
            row.id: Picture(row.id, row.content_hash, row[3], row.display_path)
            for chunk in _chunks(sorted(set(image_ids)))
            for row in session.execute(
                select(Image.id, Image.content_hash, Image.display_path, Root.display_path)
                .join(Root, Root.id == Image.root_id)
                .where(Image.id.in_(chunk))
            )
        }


def add_not_duplicates(store: Store, paths: Mapping[bytes, str]) -> int:
    """Record every pair of these contents (content hash -> a path to show) as not duplicates;
    returns how many pairs were new."""
    with store.transaction() as session:
        existing = {
            (a, b)
            for a, b in session.execute(
                select(NotDuplicate.hash_a, NotDuplicate.hash_b).where(
                    NotDuplicate.hash_a.in_(list(paths))
                )
            )
        }
        added = 0
        now = _now()
        for a, b in itertools.combinations(sorted(paths), 2):
            if (a, b) in existing:
                continue
            session.add(
                NotDuplicate(hash_a=a, hash_b=b, path_a=paths[a], path_b=paths[b], created_at=now)
            )
            added += 1
    return added


def forget_not_duplicates(store: Store, image_ids: Sequence[int] | None = None) -> int:
    """Forget the decisions between the given images' contents (or all); returns how many."""
    with store.transaction() as session:
        if image_ids is None:
            result: CursorResult[Any] = session.execute(delete(NotDuplicate))  # type: ignore[assignment]
            return int(result.rowcount or 0)
        hashes = sorted(
            set(session.scalars(select(Image.content_hash).where(Image.id.in_(image_ids))))
        )
        pairs = list(itertools.combinations(hashes, 2))
        removed = 0
        for chunk in _chunks(pairs):
            deleted: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                delete(NotDuplicate).where(
                    tuple_(NotDuplicate.hash_a, NotDuplicate.hash_b).in_(chunk)
                )
            )
            removed += int(deleted.rowcount or 0)
        return removed


def not_duplicates(store: Store) -> list[NotDuplicatePair]:
    """Every decision, oldest first."""
    with store.session() as session:
        return [
            NotDuplicatePair(row.hash_a, row.hash_b, row.path_a, row.path_b, row.created_at)
            for row in session.scalars(select(NotDuplicate).order_by(NotDuplicate.id))
        ]


# ----------------------------------------------------------------------------- review


@dataclass(frozen=True)
class ReviewRecord:
    """A decision about one cluster, by its key."""

    cluster_key: bytes
    kind: str
    keepers: tuple[tuple[str, str], ...]  # (content hash hex, path); the first is the keeper
    members: int
    label: str
    created_at: datetime


def review_decisions(store: Store) -> list[ReviewRecord]:
    """Every stored review decision."""
    with store.session() as session:
        return [
            ReviewRecord(
                row.cluster_key,
                row.kind,
                tuple((str(h), str(p)) for h, p in json.loads(row.keepers)),
                row.members,
                row.label,
                row.created_at,
            )
            for row in session.scalars(select(ReviewDecision))
        ]


def save_review_decisions(store: Store, records: Sequence[ReviewRecord]) -> None:
    """Insert the decisions, replacing any earlier one about the same clusters."""
    keys = [r.cluster_key for r in records]
    with store.transaction() as session:
        for chunk in _chunks(keys):
            session.execute(delete(ReviewDecision).where(ReviewDecision.cluster_key.in_(chunk)))
        session.add_all(
            ReviewDecision(
                cluster_key=r.cluster_key,
                kind=r.kind,
                keepers=json.dumps([list(k) for k in r.keepers]),
                members=r.members,
                label=r.label,
                created_at=r.created_at,
            )
            for r in records
        )


def forget_review_decision(store: Store, cluster_key: bytes) -> bool:
    """Forget the decision about the cluster with this key; whether there was one."""
    with store.transaction() as session:
        result = session.execute(
            delete(ReviewDecision).where(ReviewDecision.cluster_key == cluster_key)
        )
        return bool(getattr(result, "rowcount", 0))


__all__ = [
    "NotDuplicatePair",
    "Picture",
    "ReviewRecord",
    "add_not_duplicates",
    "forget_not_duplicates",
    "forget_review_decision",
    "not_duplicates",
    "pictures",
    "review_decisions",
    "save_review_decisions",
]
