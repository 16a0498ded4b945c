"""What the library holds, read for people: the roots and their counts (``status``), the files
that could not be indexed, one present file by id (the web UI's pictures), and forgetting the
images marked missing (``prune``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from .engine import Store
from .schema import MISSING, PRESENT, Failure, Image, Root


@dataclass(frozen=True)
class RootRecord:
    """An indexed folder."""

    id: int
    path: bytes
    display_path: str
    last_indexed_at: datetime | None


@dataclass(frozen=True)
class RootCounts:
    """An indexed folder with its images by status and its failures by kind."""

    root: RootRecord
    images: Mapping[str, int]
    failures: Mapping[str, int]


@dataclass(frozen=True)
class FailureRecord:
    """A file that could not be (or was not) indexed, and why."""

    root: str  # display paths
    path: str
    kind: str
    reason: str


@dataclass(frozen=True)
class PresentFile:
    """A present image's file as the index describes it."""

    image_id: int
    path: bytes
    size: int
    mtime_ns: int
    content_hash: bytes
    format: str


def _root(row: Root) -> RootRecord:
    return RootRecord(row.id, row.path, row.display_path, row.last_indexed_at)


def display_name(store: Store) -> str:
    """The database for people: a SQLite file's path, else its URL without the password."""
    path = store.sqlite_path
    if path is not None:
        return str(path)
    return make_url(store.url).render_as_string(hide_password=True)


def roots(store: Store) -> list[RootRecord]:
    """Every indexed folder, by display path."""
    with store.session() as session:
        rows = session.execute(select(Root).order_by(Root.display_path)).scalars()
        return [_root(r) for r in rows]


def root_counts(store: Store) -> list[RootCounts]:
    """Every indexed folder (by display path) with its images and failures counted."""
    with store.session() as session:
        images: dict[int, dict[str, int]] = {}
        for root_id, status, n in session.execute(
            select(Image.root_id, Image.status, func.count()).group_by(Image.root_id, Image.status)
        ):
            images.setdefault(root_id, {})[status] = n
        failures: dict[int, dict[str, int]] = {}
        for root_id, kind, n in session.execute(
            select(Failure.root_id, Failure.kind, func.count()).group_by(
                Failure.root_id, Failure.kind
            )
        ):
            failures.setdefault(root_id, {})[kind] = n
        rows = session.execute(select(Root).order_by(Root.display_path)).scalars()
        return [RootCounts(_root(r), images.get(r.id, {}), failures.get(r.id, {})) for r in rows]


def image_id_at(store: Store, root_id: int, relpath: bytes) -> int | None:
    """The image (any status) at this path below this root, if the index has one."""
    with store.session() as session:
        found: int | None = session.scalar(
            select(Image.id).where(Image.root_id == root_id, Image.relpath == relpath)
        )
        return found


def failures(store: Store) -> list[FailureRecord]:
    """The files that could not be indexed, by root and path."""
    with store.session() as session:
        rows = session.execute(
            select(Root.display_path, Failure.display_path, Failure.kind, Failure.reason)
            .join(Root, Root.id == Failure.root_id)
            .order_by(Root.display_path, Failure.display_path)
        )
        return [FailureRecord(r, p, k, why) for r, p, k, why in rows]


def present_file(store: Store, image_id: int) -> PresentFile | None:
    """The file of this image while the index holds it as present; None otherwise."""
    with store.session() as session:
        row = session.execute(
            select(Image, Root.path)
            .join(Root, Root.id == Image.root_id)
            .where(Image.id == image_id, Image.status == PRESENT)
        ).first()
        if row is None:
            return None
        image, root = row
        return PresentFile(
            image.id,
            os.path.join(root, image.relpath),
            image.size,
            image.mtime_ns,
            image.content_hash,
            image.format,
        )


def prune_missing(store: Store, root: bytes | None = None) -> int | None:
    """Delete the images marked missing (below the root with this absolute path, or in all);
    returns how many rows went, None when ``root`` is not an indexed folder."""
    with store.transaction() as session:
        statement = delete(Image).where(Image.status == MISSING)
        if root is not None:
            root_id = session.execute(select(Root.id).where(Root.path == root)).scalar_one_or_none()
            if root_id is None:
                return None
            statement = statement.where(Image.root_id == root_id)
        result = session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "FailureRecord",
    "PresentFile",
    "RootCounts",
    "RootRecord",
    "display_name",
    "failures",
    "image_id_at",
    "present_file",
    "prune_missing",
    "root_counts",
    "roots",
]
