"""dedupdb: find duplicate and near-duplicate images, remember them, keep the best copy.

The library API; the ``dedupdb`` command is a thin layer over it::

    from dedupdb import open_store, index
    store = open_store("photos.sqlite")
    summary = index(store, "/photos")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import DedupdbError

if TYPE_CHECKING:
    from ._version import __version__
    from .actions import ActionPlan, apply, history, plan_actions, resume, undo
    from .cluster import Cluster, build_clusters
    from .indexing import IndexOptions, IndexSummary, Progress, index
    from .library import Status, prune, status
    from .match import MatchOptions, Pair
    from .report import Report, ReportOptions, build_report, find_clusters, find_pairs
    from .store import Store, open_store

# Everything is imported on first use: each command loads only what it needs, so that
# `dedupdb --help`, `--version` and `status` start without SQLAlchemy's, numpy's or the
# search's compiled code (numba), and `dedupdb index` without the report's.
_LAZY = {
    "__version__": "_version",
    **dict.fromkeys(
        ["ActionPlan", "apply", "history", "plan_actions", "resume", "undo"], "actions"
    ),
    **dict.fromkeys(["Cluster", "build_clusters"], "cluster"),
    **dict.fromkeys(["IndexOptions", "IndexSummary", "Progress", "index"], "indexing"),
    **dict.fromkeys(["MatchOptions", "Pair"], "match"),
    **dict.fromkeys(
        ["Report", "ReportOptions", "build_report", "find_clusters", "find_pairs"], "report"
    ),
    **dict.fromkeys(["Status", "prune", "status"], "library"),
    **dict.fromkeys(["Store", "open_store"], "store"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dedupdb' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ActionPlan",
    "Cluster",
    "DedupdbError",
    "IndexOptions",
    "IndexSummary",
    "MatchOptions",
    "Pair",
    "Progress",
    "Report",
    "ReportOptions",
    "Status",
    "Store",
    "__version__",
    "apply",
    "build_clusters",
    "build_report",
    "find_clusters",
    "find_pairs",
    "history",
    "index",
    "open_store",
    "plan_actions",
    "prune",
    "resume",
    "status",
    "undo",
]
