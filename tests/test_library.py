"""``status`` reports what the database holds; ``prune`` forgets missing images on request."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import save_photo
from sqlalchemy.engine import make_url

from dedupdb.errors import DedupdbError
from dedupdb.hashes import HASH_VERSION
from dedupdb.indexing import IndexOptions, index
from dedupdb.library import prune, status
from dedupdb.store import Store, head_revision

SEQUENTIAL = IndexOptions(workers=1)


def test_empty_database(store: Store, db_path: Path) -> None:
    result = status(store)
    if store.sqlite_path is not None:
        assert result.database == str(db_path)
    else:  # --backend postgresql: the server's URL, naming the database, never its password
        url = make_url(store.url)
        assert result.database.startswith("postgresql") and f"/{url.database}" in result.database
        assert url.password is None or str(url.password) not in result.database
    assert result.schema_version == result.schema_head == head_revision()
    assert result.images == 0
    assert result.roots == []
    assert result.hash_params is None
    assert (result.size_bytes or 0) > 0


def test_counts_per_root(store: Store, photo_tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    save_photo(other / "a.jpg", 10)
    save_photo(other / "b.jpg", 11)
    (other / "broken.jpg").write_bytes(b"nope")
    save_photo(other / "tiny.jpg", 12, (30, 30))
    index(store, photo_tree, SEQUENTIAL)
    index(store, other, SEQUENTIAL)
    (other / "b.jpg").unlink()
    index(store, other, SEQUENTIAL)
    result = status(store)
    assert result.images == 7
    assert result.hash_params == {"hash_size": 8, "version": HASH_VERSION}
    by_path = {root.path: root for root in result.roots}
    assert set(by_path) == {str(photo_tree), str(other)}
    assert (by_path[str(other)].present, by_path[str(other)].missing) == (1, 1)
    assert (by_path[str(other)].failed, by_path[str(other)].skipped) == (1, 1)
    assert by_path[str(photo_tree)].present == 6
    assert by_path[str(photo_tree)].last_indexed_at is not None
    data = result.to_dict()
    assert data["roots"][0]["path"] in {str(photo_tree), str(other)}


def test_prune_one_root_or_all(store: Store, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        save_photo(folder / "a.jpg", 1 if folder == first else 2)
        save_photo(folder / "b.jpg", 3 if folder == first else 4)
        index(store, folder, SEQUENTIAL)
        (folder / "a.jpg").unlink()
        index(store, folder, SEQUENTIAL)
    assert prune(store, first) == 1
    assert {r.path: r.missing for r in status(store).roots} == {str(first): 0, str(second): 1}
    assert prune(store) == 1
    assert prune(store) == 0
    assert status(store).images == 2


def test_prune_of_a_folder_never_indexed(store: Store, tmp_path: Path) -> None:
    with pytest.raises(DedupdbError, match="not an indexed folder") as caught:
        prune(store, tmp_path / "nowhere")
    assert caught.value.hint and "dedupdb status" in caught.value.hint


def test_counts_what_apply_did(store: Store, tmp_path: Path) -> None:
    from dedupdb.actions import apply
    from dedupdb.plan import plan_actions
    from dedupdb.report import build_report

    root = tmp_path / "library"
    original = save_photo(root / "original.png", 21, (400, 300))
    (root / "copy").mkdir()
    (root / "copy" / "original.png").write_bytes(original.read_bytes())
    save_photo(root / "other.jpg", 22)
    index(store, root, SEQUENTIAL)
    assert status(store).roots[0].acted_on == {}
    report = build_report(store)
    plan = plan_actions(store, report, quarantine=tmp_path / "quarantine")
    assert len(plan.actions) == 1
    apply(store, plan)
    result = status(store).roots[0]
    assert result.acted_on == {"quarantined": 1}
    assert result.present == 2
