"""The user's decisions that outlive a report: pairs of pictures that are *not* duplicates.

A decision is kept by content hash, so it follows the pictures through moves, renames, prune
and re-index, and covers every exact copy of either picture. The report turns the decisions
into the image-id pairs that matching leaves out (``MatchOptions.exclude_pairs``).

The clusters of the last report are remembered too (as image ids), so that a user can say
``dedupdb not-duplicate --cluster 3`` about what they just read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DedupdbError
from .store import Store, library
from .store import decisions as stored
from .store.reports import LAST_REPORT_DOCUMENT_KEY, LAST_REPORT_KEY
from .walk import display

# A cluster of n pictures is n(n-1)/2 decisions; beyond this many members, refuse (a cluster
# that large is a matching problem: lower --threshold instead).
MAX_CLUSTER_DECISION = 200


@dataclass(frozen=True)
class Decision:
    """One "not duplicates" pair, as the user sees it."""

    hash_a: str  # hex
    hash_b: str
    path_a: str
    path_b: str
    created_at: str


def image_ids_for_paths(store: Store, paths: Sequence[str | bytes]) -> list[int]:
    """The image ids of indexed files given by path (absolute or relative to the cwd).

    Raises ``DedupdbError`` naming the first path that is not in the database.
    """
    roots = sorted(((r.id, r.path) for r in library.roots(store)), key=lambda r: -len(r[1]))
    found: list[int] = []
    for given in paths:
        raw = os.fsencode(given)
        absolute = os.path.abspath(raw)
        image_id = _image_at(store, roots, {absolute, os.path.realpath(raw)})
        if image_id is None:
            raise DedupdbError(
                f"not in the database: {display(absolute)}",
                "give the path of an indexed image (dedupdb index FOLDER first)",
            )
        found.append(image_id)
    return found


def _image_at(store: Store, roots: list[tuple[int, bytes]], candidates: set[bytes]) -> int | None:
    """The image at one of these absolute paths, looked for below the deepest root first."""
    for root_id, root in roots:
        for path in candidates:
            if not path.startswith(root.rstrip(b"/") + b"/"):
                continue
            image_id = library.image_id_at(store, root_id, os.path.relpath(path, root))
            if image_id is not None:
                return image_id
    return None


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
    rows = stored.pictures(store, ids)
    missing = [i for i in ids if i not in rows]
    if missing:
        raise DedupdbError(
            f"image id {missing[0]} is no longer in the database",
            "run dedupdb report again and use its cluster ids",
        )
    by_hash: dict[bytes, str] = {}
    for image_id in ids:
        row = rows[image_id]
        by_hash.setdefault(row.content_hash, os.path.join(row.root, row.display_path))
    if len(by_hash) < 2:
        raise DedupdbError(
            "these files are identical copies (same content): they are duplicates",
            "to keep them all, simply do not apply the report to them",
        )
    return stored.add_not_duplicates(store, by_hash)


def forget_not_duplicates(store: Store, image_ids: Sequence[int] | None = None) -> int:
    """Forget decisions between the given pictures (or all of them); returns how many."""
    return stored.forget_not_duplicates(store, image_ids)


def list_not_duplicates(store: Store) -> list[Decision]:
    return [
        Decision(
            hash_a=pair.hash_a.hex(),
            hash_b=pair.hash_b.hex(),
            path_a=pair.path_a,
            path_b=pair.path_b,
            created_at=pair.created_at.isoformat(timespec="seconds"),
        )
        for pair in stored.not_duplicates(store)
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
