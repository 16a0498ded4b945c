"""What the database holds (``status``) and removing what the user no longer wants (``prune``)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DedupdbError
from .store import HASH_PARAMS_KEY, Store, head_revision, library
from .store.schema import (
    DELETED,
    FAILED,
    LINKED,
    MISSING,
    PRESENT,
    QUARANTINED,
    SKIPPED,
    TRASHED,
)
from .walk import display


@dataclass
class RootStatus:
    path: str
    present: int
    missing: int
    failed: int
    skipped: int
    last_indexed_at: str | None
    # What `dedupdb apply` did to this root's duplicates: status -> count (e.g. quarantined).
    acted_on: dict[str, int] = field(default_factory=dict)


@dataclass
class Status:
    database: str
    schema_version: str
    schema_head: str
    size_bytes: int | None
    hash_params: dict[str, int] | None
    images: int
    roots: list[RootStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(store: Store) -> Status:
    """Roots with their image and failure counts, and the database's size and schema."""
    roots = [
        RootStatus(
            path=counted.root.display_path,
            present=counted.images.get(PRESENT, 0),
            missing=counted.images.get(MISSING, 0),
            failed=counted.failures.get(FAILED, 0),
            skipped=counted.failures.get(SKIPPED, 0),
            last_indexed_at=counted.root.last_indexed_at.isoformat(timespec="seconds")
            if counted.root.last_indexed_at
            else None,
            acted_on={
                state: counted.images[state]
                for state in (QUARANTINED, TRASHED, LINKED, DELETED)
                if counted.images.get(state)
            },
        )
        for counted in library.root_counts(store)
    ]
    return Status(
        database=library.display_name(store),
        schema_version=store.schema_version,
        schema_head=head_revision(),
        size_bytes=store.size_bytes(),
        hash_params=store.get_setting(HASH_PARAMS_KEY),
        images=sum(r.present for r in roots),
        roots=roots,
    )


def prune(store: Store, root: str | os.PathLike[str] | None = None) -> int:
    """Forget images marked missing (in one root, or in all); returns how many rows went.

    Missing rows are kept by ``index`` on purpose: an unplugged drive must not wipe the index.
    """
    root_bytes = None if root is None else os.path.abspath(os.fsencode(root))
    removed = library.prune_missing(store, root_bytes)
    if removed is None:
        assert root_bytes is not None
        raise DedupdbError(
            f"{display(root_bytes)} is not an indexed folder",
            "`dedupdb status` lists the indexed folders",
        )
    return removed
