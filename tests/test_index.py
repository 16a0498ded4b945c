from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from dedupdb.index import IndexOptions, index
from dedupdb.models import Image
from dedupdb.store import Store

SEQUENTIAL = IndexOptions(workers=1)


def paths(store: Store) -> dict[str, str]:
    with store.session() as session:
        return dict(session.execute(select(Image.display_path, Image.status)).all())


def test_first_run_indexes_every_image(store: Store, photo_tree: Path) -> None:
    summary = index(store, photo_tree, SEQUENTIAL)
    assert summary.new == 6
    assert summary.failed == 0
    assert set(paths(store)) == {
        "2024/beach.jpg", "2024/forest.jpg", "2024/trip/city.png", "2025/snow.jpg",
        "2025/desert.webp", "cat.jpg",
    }  # fmt: skip


def test_rerun_touches_nothing(store: Store, photo_tree: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    again = index(store, photo_tree, SEQUENTIAL)
    assert again.unchanged == 6
    assert again.processed == 0
