"""Column records: dataclasses whose fields hold one entry per row, as numpy arrays or lists.

``take_rows`` selects rows of any such record, so each record type does not spell out its
fields once more (the ranking's ``keeper.Table``, the report's ``store.catalog.Details``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

Record = TypeVar("Record")


def take_rows(
    record: Record, rows: Sequence[int] | np.ndarray, *, drop: Sequence[str] = ()
) -> Record:
    """A copy of ``record`` (a dataclass of columns) with only these rows, in this order:
    arrays are indexed, lists picked entry by entry, None stays None; the fields named in
    ``drop`` get their default instead."""
    picks = np.asarray(rows, dtype=np.int64)
    positions = picks.tolist()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(record):  # type: ignore[arg-type]  # any column dataclass
        if field.name in drop:
            continue
        column = getattr(record, field.name)
        if column is None:
            values[field.name] = None
        elif isinstance(column, np.ndarray):
            values[field.name] = column[picks]
        else:
            values[field.name] = [column[r] for r in positions]
    return type(record)(**values)
