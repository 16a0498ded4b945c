"""What the database holds (``status``) and removing what the user no longer wants (``prune``)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, func, select

from .errors import DedupdbError
from .store import HASH_PARAMS_KEY, Store, head_revision
from .store.schema import (
    DELETED,
    FAILED,
    LINKED,
    MISSING,
    PRESENT,
    QUARANTINED,
    SKIPPED,
    TRASHED,
    Failure,
    Image,
    Root,
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
    with store.session() as session:
        images = {
            (r, s): n
            for r, s, n in session.execute(
                select(Image.root_id, Image.status, func.count()).group_by(
                    Image.root_id, Image.status
                )
            )
        }
        failures = {
            (r, k): n
            for r, k, n in session.execute(
                select(Failure.root_id, Failure.kind, func.count()).group_by(
                    Failure.root_id, Failure.kind
                )
            )
        }
        roots = [
            RootStatus(
                path=root.display_path,
                present=images.get((root.id, PRESENT), 0),
                missing=images.get((root.id, MISSING), 0),
                failed=failures.get((root.id, FAILED), 0),
                skipped=failures.get((root.id, SKIPPED), 0),
                last_indexed_at=root.last_indexed_at.isoformat(timespec="seconds")
                if root.last_indexed_at
                else None,
                acted_on={
                    state: images[(root.id, state)]
                    for state in (QUARANTINED, TRASHED, LINKED, DELETED)
                    if images.get((root.id, state))
                },
            )
            for root in session.execute(select(Root).order_by(Root.display_path)).scalars()
        ]
    return Status(
        database=_database_name(store),
        schema_version=store.schema_version,
        schema_head=head_revision(),
        size_bytes=store.size_bytes(),
        hash_params=store.get_setting(HASH_PARAMS_KEY),
        images=sum(r.present for r in roots),
        roots=roots,
    )


def _database_name(store: Store) -> str:
    path = store.sqlite_path
    if path is not None:
        return str(path)
    from sqlalchemy.engine import make_url

    return make_url(store.url).render_as_string(hide_password=True)


def prune(store: Store, root: str | os.PathLike[str] | None = None) -> int:
    """Forget images marked missing (in one root, or in all); returns how many rows went.

    Missing rows are kept by ``index`` on purpose: an unplugged drive must not wipe the index.
    """
    with store.transaction() as session:
        statement = delete(Image).where(Image.status == MISSING)
        if root is not None:
            root_bytes = os.path.abspath(os.fsencode(root))
            root_id = session.execute(
                select(Root.id).where(Root.path == root_bytes)
            ).scalar_one_or_none()
            if root_id is None:
                raise DedupdbError(
                    f"{display(root_bytes)} is not an indexed folder",
                    "`dedupdb status` lists the indexed folders",
                )
            statement = statement.where(Image.root_id == root_id)
        result = session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
