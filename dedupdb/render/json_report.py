"""The report as its JSON document (docs/report-schema.md), and read back."""

from __future__ import annotations

import io
import json
from typing import IO, Any

import orjson

from ..collector import gc_paused
from ..errors import DedupdbError
from ..report import Report, ReportCluster, cluster_dict


def write_json(report: Report, out: IO[str]) -> None:
    """The report document, one top-level field per line and one cluster per line: easy to
    read, diff and edit (change a keeper, delete a cluster's line).

    Encoded with orjson (compact separators; its dataclass support reads each cluster and
    member as it stands, without building a dict per member, on which a report of 100,000s
    of members would otherwise spend most of its writing time). A value orjson refuses (text
    that is not valid Unicode, an integer beyond 64 bits) is left to the standard library's
    encoder, which writes what it always wrote.
    """
    with gc_paused():
        text = _json_text(report)
    out.write(text)


def _json_text(report: Report) -> str:
    data = report.to_dict(clusters=False)
    parts = ["{"]
    for key, value in data.items():
        parts.append(f"{_dumps(key)}: {_dumps(value)},")
    if report.clusters:
        parts.append('"clusters": [')
        parts.append(",\n".join([_dumps(cluster) for cluster in report.clusters]))
        parts.append("]}")
    else:
        parts.append('"clusters": []}')
    return "\n".join(parts) + "\n"


def _dumps(value: Any) -> str:
    """One JSON value: orjson, else the standard library (see ``write_json``)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        if isinstance(value, ReportCluster):
            value = cluster_dict(value, copy=False)
        return json.dumps(value, ensure_ascii=False, check_circular=False)


def to_json(report: Report) -> str:
    """The report document as text (``write_json``)."""
    buffer = io.StringIO()
    write_json(report, buffer)
    return buffer.getvalue()


def read_json(text: str) -> Report:
    """A report document read back (``Report.from_dict``); raises DedupdbError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DedupdbError(f"not a JSON report: {err}") from err
    return Report.from_dict(data)
