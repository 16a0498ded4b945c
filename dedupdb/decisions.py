"""The user's decisions that outlive a report: pairs of pictures that are *not* duplicates.

A decision is kept by content hash, so it follows the pictures through moves, renames, prune
and re-index, and covers every exact copy of either picture. The report turns the decisions
into the image-id pairs that matching leaves out (``store.catalog.excluded_pairs``).

The clusters of the last report are remembered too (as image ids, ``store.reports``), so that
a user can say ``dedupdb not-duplicate --cluster 3`` about what they just read.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import CursorResult, delete, select, tuple_

from .errors import DedupdbError
from .store import Store
from .store.reports import LAST_REPORT_DOCUMENT_KEY, LAST_REPORT_KEY
from .store.schema import Image, NotDuplicate, Root
from .walk import display

# A cluster of n pictures is n(n-1)/2 decisions; beyond this many members, refuse (a cluster
# that large is a matching problem: lower --threshold instead).
MAX_CLUSTER_DECISION = 200
_CHUNK = 500


@dataclass(frozen=True)
class Decision:
    """One "not duplicates" pair, as the user sees it."""

    hash_a: str  # hex
    hash_b: str
    path_a: str
    path_b: str
    created_at: str


def _chunks(items: Sequence[object], size: int = _CHUNK) -> Iterable[Sequence[object]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def image_ids_for_paths(store: Store, paths: Sequence[str | bytes]) -> list[int]:
    """The image ids of indexed files given by path (absolute or relative to the cwd).

    Raises ``DedupdbError`` naming the first path that is not in the database.
    """
    with store.session() as session:
        roots = [(r.id, r.path) for r in session.scalars(select(Root))]
        found: list[int] = []
        for given in paths:
            raw = os.fsencode(given)
            absolute = os.path.abspath(raw)
            candidates = {absolute, os.path.realpath(raw)}
            image_id = None
            for root_id, root in sorted(roots, key=lambda r: -len(r[1])):
                for path in candidates:
                    if not path.startswith(root.rstrip(b"/") + b"/"):
                        continue
                    relpath = os.path.relpath(path, root)
                    image_id = session.scalar(
                        select(Image.id).where(Image.root_id == root_id, Image.relpath == relpath)
                    )
                    if image_id is not None:
                        break
                if image_id is not None:
                    break
            if image_id is None:
                raise DedupdbError(
                    f"not in the database: {display(absolute)}",
                    "give the path of an indexed image (dedupdb index FOLDER first)",
                )
            found.append(image_id)
    return found


def mark_not_duplicates(store: Store, image_ids: Sequence[int]) -> int:
    """Record that the given pictures are not duplicates of each other (every pair of them).

    Returns how many new pairs were recorded. Raises ``DedupdbError`` for fewer than two
    pictures, an unknown id, identical copies, or a cluster too large to be meant.
    """
    ids = sorted(set(image_ids))
    if len(ids) < 2:
        raise DedupdbError("give at least two different images", "two paths, or --cluster ID")
    if len(ids) > MAX_CLUSTER_DECISION:
        raise DedupdbError(
            f"{len(ids)} images at once is more than {MAX_CLUSTER_DECISION}",
            "a cluster that large means the threshold is too loose: try --threshold lower",
        )
    with store.transaction() as session:
        rows = {
            row.id: row
            for row in session.execute(
                select(Image.id, Image.content_hash, Image.display_path, Root.display_path)
                .join(Root, Root.id == Image.root_id)
                .where(Image.id.in_(ids))
            )
        }
        missing = [i for i in ids if i not in rows]
        if missing:
            raise DedupdbError(
                f"image id {missing[0]} is no longer in the database",
                "run dedupdb report again and use its cluster ids",
            )
        by_hash: dict[bytes, str] = {}
        for image_id in ids:
            row = rows[image_id]
            by_hash.setdefault(row.content_hash, os.path.join(row[3], row.display_path))
        if len(by_hash) < 2:
            raise DedupdbError(
                "these files are identical copies (same content): they are duplicates",
                "to keep them all, simply do not apply the report to them",
            )
        existing = {
            (a, b)
            for a, b in session.execute(
                select(NotDuplicate.hash_a, NotDuplicate.hash_b).where(
                    NotDuplicate.hash_a.in_(list(by_hash))
                )
            )
        }
        added = 0
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for a, b in itertools.combinations(sorted(by_hash), 2):
            if (a, b) in existing:
                continue
            session.add(
                NotDuplicate(
                    hash_a=a, hash_b=b, path_a=by_hash[a], path_b=by_hash[b], created_at=now
                )
            )
            added += 1
    return added


def forget_not_duplicates(store: Store, image_ids: Sequence[int] | None = None) -> int:
    """Forget decisions between the given pictures (or all of them); returns how many."""
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


def list_not_duplicates(store: Store) -> list[Decision]:
    with store.session() as session:
        return [
            Decision(
                hash_a=row.hash_a.hex(),
                hash_b=row.hash_b.hex(),
                path_a=row.path_a,
                path_b=row.path_b,
                created_at=row.created_at.isoformat(timespec="seconds"),
            )
            for row in session.scalars(select(NotDuplicate).order_by(NotDuplicate.id))
        ]


def last_report(store: Store) -> dict[str, Any]:
    """The document the last ``dedupdb report`` recorded for ``apply``; raises
    ``DedupdbError`` saying which report to make when there is none."""
    document = store.get_setting(LAST_REPORT_DOCUMENT_KEY)
    if isinstance(document, dict):
        return document
    if store.get_setting(LAST_REPORT_KEY) is not None:
        raise DedupdbError(
            "the last report was made by an older dedupdb, which did not record its keepers",
            "run `dedupdb report` again with the options you want, review it, then "
            "`dedupdb apply` (or give a report file: `dedupdb apply report.json`)",
        )
    raise DedupdbError(
        "no report has been made yet: apply acts on the last report you reviewed",
        "run `dedupdb report --html report.html`, look at it, then `dedupdb apply`",
    )


def last_cluster(store: Store, cluster_id: int) -> list[int]:
    clusters = store.get_setting(LAST_REPORT_KEY)
    if not clusters:
        raise DedupdbError("no report has been made yet", "run dedupdb report first")
    members = clusters.get(str(cluster_id))
    if members is None:
        raise DedupdbError(
            f"the last report has no cluster {cluster_id} (it had {len(clusters)})",
            "use a cluster id from the last dedupdb report",
        )
    return [int(m) for m in members]
