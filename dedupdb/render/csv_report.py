"""The report as CSV: one row per member, for spreadsheets and scripts."""

from __future__ import annotations

import csv
import io
from typing import IO

from ..report import Report
from .parts import PartPair, member_pairs

CSV_COLUMNS = (
    "cluster", "exact", "max_distance", "cluster_reclaimable_bytes", "keeper", "image_id",
    "path", "size", "width", "height", "format", "distance", "transform", "score", "taken_at",
    "camera", "mtime_ns", "content_hash", "reasons", "kind", "region", "region_of",
)  # fmt: skip


# A spreadsheet reads a cell that begins with one of these as a formula (OWASP's "CSV
# injection"): EXIF text such as a camera maker `=HYPERLINK(...)` would become a live link.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` (OWASP's
    advice; the spreadsheet then shows the text as it is). Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(report: Report, out: IO[str]) -> None:
    """One row per member, keeper first in each cluster; the reasons on the keeper's row.
    Text that a spreadsheet would take for a formula is neutralised (``csv_cell``)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cluster in report.clusters:
        parts = member_pairs(cluster)
        for member in cluster.members:
            part = parts.get(member.image_id) if parts else None
            writer.writerow(
                csv_cell(cell)
                for cell in [
                    cluster.id,
                    int(cluster.exact),
                    cluster.max_distance,
                    cluster.reclaimable_bytes,
                    int(member.keeper),
                    member.image_id,
                    member.path,
                    member.size,
                    member.width,
                    member.height,
                    member.format,
                    member.distance,
                    member.transform,
                    f"{member.score:.4f}",
                    member.taken_at or "",
                    member.camera or "",
                    member.mtime_ns,
                    member.content_hash,
                    "; ".join(cluster.reasons) if member.keeper else "",
                    *(_NO_PART if part is None else _part_cells(part)),
                ]
            )


_NO_PART = ("", "", "")  # the kind, region and region_of of a member of no part-copy pair


def _part_cells(pair: PartPair) -> tuple[str, str, str | int]:
    """kind, region ("left top right bottom" fractions) and region_of (the image id of the
    whole picture the region lies in) of a member's part-copy pair."""
    region = " ".join(f"{v:g}" for v in pair.region) if pair.region is not None else ""
    return pair.kind, region, pair.whole


def to_csv(report: Report) -> str:
    """The report as CSV text (``write_csv``)."""
    buffer = io.StringIO()
    write_csv(report, buffer)
    return buffer.getvalue()
