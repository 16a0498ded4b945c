"""dedupdb: find duplicate and near-duplicate images, remember them, keep the best copy.

The library API; the ``dedupdb`` command is a thin layer over it::

    from dedupdb import open_store, index
    store = open_store("photos.sqlite")
    summary = index(store, "/photos")
"""

from __future__ import annotations

from ._version import __version__
from .actions import ActionPlan, apply, history, plan_actions, resume, undo
from .cluster import Cluster, build_clusters, find_clusters
from .errors import DedupdbError
from .index import IndexOptions, IndexSummary, Progress, index
from .match import MatchOptions, Pair, find_pairs
from .report import Report, ReportOptions, build_report
from .status import Status, prune, status
from .store import Store, open_store

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
