"""The database's figures in Prometheus' text exposition format (version 0.0.4): for
node_exporter's textfile collector (``dedupdb metrics --output FILE``). Written by hand: the
format is a few lines of text, and it needs no client library (the tests parse it with
``prometheus_client``'s own parser).

https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from .errors import DedupdbError
from .progress import (
    DEFAULT_STUCK_AFTER_S,
    LibraryTotals,
    RunProgress,
    library_totals,
    live_runs,
    run_history,
)
from .store import Store
from .tracking import APPLY, FAILED, FINISHED, INDEX, INTERRUPTED, RESUME, RUNNING, UNDO

KINDS = (INDEX, APPLY, RESUME, UNDO)
STATES = (RUNNING, FINISHED, FAILED, INTERRUPTED)
# Enough past runs to find the latest of each kind, and the index runs' total files.
HISTORY = 1000
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


class _Family:
    """One metric: its help, type and samples. A counter's name ends in ``_total`` (in the
    0.0.4 format its HELP and TYPE lines carry the whole name, as prometheus_client writes)."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[Sample] = []

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            name = f"{self.name}{{{text}}}" if text else self.name
            yield f"{name} {_number(value)}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _timestamp(value: datetime) -> float:
    return value.replace(tzinfo=timezone.utc).timestamp()


def metrics_text(store: Store, *, stuck_after: float = DEFAULT_STUCK_AFTER_S) -> str:
    """Every metric, as the text a Prometheus scrape expects (serve it as ``CONTENT_TYPE``)."""
    totals = library_totals(store)
    history = run_history(store, limit=HISTORY, stuck_after=stuck_after)
    live = live_runs(store, stuck_after=stuck_after)
    families = [*_library(totals), *_runs(history, live)]
    return "".join(line + "\n" for family in families for line in family.lines())


def _library(totals: LibraryTotals) -> list[_Family]:
    images = _Family("dedupdb_images", "gauge", "Images in the database, by status")
    for status in sorted({"present", "missing", *totals.by_status}):
        images.add(totals.by_status.get(status, 0), status=status)
    failures = _Family(
        "dedupdb_index_failures", "gauge", "Files the index could not read (failed) or left out"
    )
    failures.add(totals.failed, kind="failed")
    failures.add(totals.skipped, kind="skipped")
    exact = _Family(
        "dedupdb_exact_duplicates", "gauge", "Byte-identical copies beyond one of each, now"
    )
    exact.add(totals.exact_duplicates)
    exact_bytes = _Family(
        "dedupdb_exact_reclaimable_bytes", "gauge", "Bytes of the byte-identical copies, now"
    )
    exact_bytes.add(totals.exact_reclaimable_bytes)
    families = [images, failures, exact, exact_bytes]
    if totals.report is not None:
        report = totals.report
        for name, help_text, value in (
            (
                "dedupdb_duplicates",
                "Duplicates (not keepers) in the latest report",
                report.duplicates,
            ),
            ("dedupdb_duplicate_clusters", "Clusters in the latest report", report.clusters),
            (
                "dedupdb_reclaimable_bytes",
                "Bytes the latest report's duplicates take",
                report.reclaimable_bytes,
            ),
            (
                "dedupdb_report_timestamp_seconds",
                "When the latest report was made (Unix time)",
                _timestamp(report.made_at),
            ),
        ):
            family = _Family(name, "gauge", help_text)
            family.add(value)
            families.append(family)
    return families


def _runs(history: list[RunProgress], live: list[RunProgress]) -> list[_Family]:
    running = _Family("dedupdb_run_running", "gauge", "Runs of each kind going on now")
    stuck = _Family(
        "dedupdb_run_stuck", "gauge", "Runs of each kind going on with no progress for long"
    )
    for kind in KINDS:
        running.add(sum(1 for r in live if r.kind == kind), kind=kind)
        stuck.add(sum(1 for r in live if r.kind == kind and r.stuck), kind=kind)
    state = _Family("dedupdb_last_run_state", "gauge", "The latest run of each kind: its state")
    started = _Family(
        "dedupdb_last_run_start_timestamp_seconds", "gauge", "The latest run: when it started"
    )
    ended = _Family(
        "dedupdb_last_run_end_timestamp_seconds", "gauge", "The latest run: when it ended"
    )
    duration = _Family(
        "dedupdb_last_run_duration_seconds", "gauge", "The latest run: how long it ran (so far)"
    )
    idle = _Family(
        "dedupdb_last_run_seconds_since_progress", "gauge", "The latest run: seconds since it moved"
    )
    files = _Family("dedupdb_last_run_files", "gauge", "The latest run's files, by count")
    read = _Family("dedupdb_last_run_bytes", "gauge", "The latest run: bytes read or acted on")
    rate = _Family("dedupdb_last_run_rate_files_per_second", "gauge", "The latest run's rate")
    for kind in KINDS:
        last = next((r for r in history if r.kind == kind), None)
        if last is None:
            continue
        for name in STATES:
            state.add(1 if last.state == name else 0, kind=kind, state=name)
        started.add(_timestamp(last.started_at), kind=kind)
        if last.finished_at is not None:
            ended.add(_timestamp(last.finished_at), kind=kind)
        duration.add(round(last.elapsed_seconds, 3), kind=kind)
        idle.add(round(last.idle_seconds, 3) if last.running else 0, kind=kind)
        for count in ("planned", "done", "new", "changed", "moved", "unchanged", "skipped"):
            files.add(getattr(last, count), kind=kind, count=count)
        files.add(last.failed, kind=kind, count="failed")
        read.add(last.bytes_read, kind=kind)
        rate.add(last.rate if last.running else 0, kind=kind)
    indexed = _Family(
        "dedupdb_indexed_files_total",
        "counter",
        "Files indexed (new, changed or moved) by the recorded index runs",
    )
    indexed.add(sum(r.new + r.changed + r.moved for r in history if r.kind == INDEX))
    return [running, stuck, state, started, ended, duration, idle, files, read, rate, indexed]


def write_metrics(store: Store, target: str | os.PathLike[str], **options: float) -> Path:
    """Write ``metrics_text`` to ``target`` atomically (a temporary file in the same folder,
    renamed over it): the textfile collector never reads a half-written file."""
    path = Path(target)
    text = metrics_text(store, **options)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise DedupdbError(
            f"cannot write the metrics to {path}: {err.strerror or err}",
            "give a file in a folder you can write to",
        ) from err
    return path


__all__ = ["CONTENT_TYPE", "metrics_text", "write_metrics"]
