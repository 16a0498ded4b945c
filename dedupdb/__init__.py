"""dedupdb: find duplicate and near-duplicate images, remember them, keep the best copy.

The library API; the ``dedupdb`` command is a thin layer over it::

    from dedupdb import open_store, index
    store = open_store("photos.sqlite")
    summary = index(store, "/photos")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import DedupdbError

# `index` and `status` are imported now: each is also the name of its module, which would
# otherwise shadow the function once the module is imported.
from .index import IndexOptions, IndexSummary, Progress, index
from .status import Status, prune, status
from .store import Store, open_store

if TYPE_CHECKING:
    from .actions import ActionPlan, apply, history, plan_actions, resume, undo
    from .cluster import Cluster, build_clusters, find_clusters
    from .match import MatchOptions, Pair, find_pairs
    from .report import Report, ReportOptions, build_report

# The later stages are imported on first use, so that `dedupdb status`, `--help` and the
# container's health check start without loading the search's compiled code (numba).
_LAZY = {
    **dict.fromkeys(
        ["ActionPlan", "apply", "history", "plan_actions", "resume", "undo"], "actions"
    ),
    **dict.fromkeys(["Cluster", "build_clusters", "find_clusters"], "cluster"),
    **dict.fromkeys(["MatchOptions", "Pair", "find_pairs"], "match"),
    **dict.fromkeys(["Report", "ReportOptions", "build_report"], "report"),
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
