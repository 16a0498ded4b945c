"""What ``dedupdb report`` records: its figures over time, and the last report itself.

``record_report_totals`` keeps each report's figures (the library's totals over time, read by
``progress.totals_history``). ``remember_report`` keeps the last report's clusters (for
``not-duplicate --cluster ID``) and the document ``apply`` acts on (its time, settings,
clusters and keepers, with each member's path and content hash, to refuse a file that changed
since). Both are best effort: a report made while the database is busy or read-only still gets
made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.exc import DBAPIError, OperationalError

from .engine import Store
from .schema import ReportTotals

# The settings row holding the last report's clusters (cluster id -> image ids).
LAST_REPORT_KEY = "last_report_clusters"
# What `dedupdb apply` without a report file acts on: the last report's time, settings,
# clusters and keepers, with each member's path and content hash (to refuse a file that
# changed since), recorded when the report was made.
LAST_REPORT_DOCUMENT_KEY = "last_report"


def record_report_totals(
    store: Store,
    *,
    images: int,
    clusters: int,
    duplicates: int,
    reclaimable_bytes: int,
    settings: Mapping[str, Any],
) -> None:
    """Keep a report's figures (the library's totals over time); the same figures as the
    latest recorded ones with the same settings are not kept twice."""
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    figures = (images, clusters, duplicates, reclaimable_bytes)
    try:
        with store.transaction() as session:
            latest = session.execute(
                select(ReportTotals).order_by(desc(ReportTotals.id)).limit(1)
            ).scalar_one_or_none()
            if latest is not None and latest.settings == text:
                recorded = (latest.images, latest.clusters, latest.duplicates)
                if (*recorded, latest.reclaimable_bytes) == figures:
                    return
            session.add(
                ReportTotals(
                    made_at=datetime.now(timezone.utc).replace(tzinfo=None),
                    images=images,
                    clusters=clusters,
                    duplicates=duplicates,
                    reclaimable_bytes=reclaimable_bytes,
                    settings=text,
                )
            )
    except DBAPIError:  # a report made while the database is busy still gets made
        pass


def remember_clusters(store: Store, clusters: dict[int, list[int]]) -> bool:
    """Keep the last report's clusters (id -> image ids) for ``--cluster ID``. Returns False
    when the database cannot be written (e.g. a read-only file): reporting still works."""
    try:
        with store.transaction() as session:
            store.set_setting(session, LAST_REPORT_KEY, {str(k): v for k, v in clusters.items()})
    except OperationalError:
        return False
    return True


def remember_report(store: Store, clusters: dict[int, list[int]], document: dict[str, Any]) -> bool:
    """Keep the last report: its clusters (for ``--cluster ID``) and the document ``apply``
    acts on (``report.actionable``), in one transaction. Returns False when the database
    cannot be written (e.g. a read-only file): reporting still works."""
    try:
        with store.transaction() as session:
            store.set_setting(session, LAST_REPORT_KEY, {str(k): v for k, v in clusters.items()})
            store.set_setting(session, LAST_REPORT_DOCUMENT_KEY, document)
    except OperationalError:
        return False
    return True


__all__ = [
    "LAST_REPORT_DOCUMENT_KEY",
    "LAST_REPORT_KEY",
    "record_report_totals",
    "remember_clusters",
    "remember_report",
]
