""" "Not duplicates" decisions: recorded by content, turned into excluded image-id pairs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import save_photo
from sqlalchemy import inspect, select

from dedupdb.cli import cli
from dedupdb.decisions import (
    forget_not_duplicates,
    image_ids_for_paths,
    last_cluster,
    list_not_duplicates,
    mark_not_duplicates,
)
from dedupdb.errors import DedupdbError
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import Store, open_store
from dedupdb.store.catalog import excluded_pairs
from dedupdb.store.reports import remember_clusters
from dedupdb.store.schema import Image

SEQUENTIAL = IndexOptions(workers=1)


@pytest.fixture
def twins(tmp_path: Path, store: Store) -> Path:
    """Two different pictures, and an exact copy of the first."""
    root = tmp_path / "photos"
    save_photo(root / "a.jpg", 31, quality=90)
    save_photo(root / "b.jpg", 32, quality=90)
    shutil.copy(root / "a.jpg", root / "copy_of_a.jpg")
    index(store, root, SEQUENTIAL)
    return root


def ids(store: Store, root: Path, *names: str) -> list[int]:
    return image_ids_for_paths(store, [str(root / n) for n in names])


def test_table_exists_after_migration(store: Store) -> None:
    assert "not_duplicates" in inspect(store.engine).get_table_names()


def test_marked_pair_is_excluded_with_every_exact_copy(store: Store, twins: Path) -> None:
    a, b, copy = ids(store, twins, "a.jpg", "b.jpg", "copy_of_a.jpg")
    assert mark_not_duplicates(store, [a, b]) == 1
    assert excluded_pairs(store) == {(min(a, b), max(a, b)), (min(copy, b), max(copy, b))}
    assert mark_not_duplicates(store, [b, a]) == 0  # already known
    [decision] = list_not_duplicates(store)
    assert {os.path.basename(decision.path_a), os.path.basename(decision.path_b)} <= {
        "a.jpg", "b.jpg", "copy_of_a.jpg"
    }  # fmt: skip


def test_decision_survives_a_rename_and_reindex(store: Store, twins: Path) -> None:
    a, b = ids(store, twins, "a.jpg", "b.jpg")
    mark_not_duplicates(store, [a, b])
    os.rename(twins / "b.jpg", twins / "renamed.jpg")
    index(store, twins, SEQUENTIAL)
    [renamed] = ids(store, twins, "renamed.jpg")
    assert (min(a, renamed), max(a, renamed)) in excluded_pairs(store)


def test_missing_images_are_not_excluded(store: Store, twins: Path) -> None:
    a, b = ids(store, twins, "a.jpg", "b.jpg")
    mark_not_duplicates(store, [a, b])
    os.remove(twins / "b.jpg")
    index(store, twins, SEQUENTIAL)
    assert excluded_pairs(store) == frozenset()


def test_identical_copies_cannot_be_marked(store: Store, twins: Path) -> None:
    with pytest.raises(DedupdbError, match="identical copies"):
        mark_not_duplicates(store, ids(store, twins, "a.jpg", "copy_of_a.jpg"))


def test_fewer_than_two_images_is_an_error(store: Store, twins: Path) -> None:
    with pytest.raises(DedupdbError, match="at least two"):
        mark_not_duplicates(store, ids(store, twins, "a.jpg", "a.jpg"))


def test_unknown_path_and_id_are_clear_errors(store: Store, twins: Path) -> None:
    with pytest.raises(DedupdbError, match="not in the database"):
        ids(store, twins, "nope.jpg")
    with pytest.raises(DedupdbError, match="no longer in the database"):
        mark_not_duplicates(store, [*ids(store, twins, "a.jpg"), 999_999])


def test_relative_paths_are_found(
    store: Store, twins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(twins)
    assert image_ids_for_paths(store, ["a.jpg"]) == ids(store, twins, "a.jpg")


def test_forget(store: Store, twins: Path) -> None:
    a, b, copy = ids(store, twins, "a.jpg", "b.jpg", "copy_of_a.jpg")
    mark_not_duplicates(store, [a, b])
    assert forget_not_duplicates(store, [copy, b]) == 1  # same content as a
    assert excluded_pairs(store) == frozenset()
    mark_not_duplicates(store, [a, b])
    assert forget_not_duplicates(store) == 1


def test_last_report_clusters(store: Store) -> None:
    with pytest.raises(DedupdbError, match="no report"):
        last_cluster(store, 1)
    assert remember_clusters(store, {1: [4, 5], 2: [6, 7, 8]}) is True
    assert last_cluster(store, 2) == [6, 7, 8]
    with pytest.raises(DedupdbError, match="has no cluster 3"):
        last_cluster(store, 3)


def test_cli_marks_lists_and_forgets(store: Store, twins: Path) -> None:
    runner = CliRunner()
    db = ["--db", store.url]
    a, b = str(twins / "a.jpg"), str(twins / "b.jpg")
    result = runner.invoke(cli, ["not-duplicate", *db, a, b])
    assert result.exit_code == 0, result.output
    assert "Marked 2 images as not duplicates (1 new pair)" in result.output
    listed = runner.invoke(cli, ["not-duplicate", *db, "--list"])
    assert "a.jpg" in listed.output and "b.jpg" in listed.output
    forgot = runner.invoke(cli, ["not-duplicate", *db, "--forget", a, b])
    assert "Forgot 1 pair." in forgot.output
    missing = runner.invoke(cli, ["not-duplicate", *db, a, str(twins / "zzz.jpg")])
    assert missing.exit_code == 1
    assert "not in the database" in missing.output
    assert "Traceback" not in missing.output
    usage = runner.invoke(cli, ["not-duplicate", *db])
    assert usage.exit_code == 2


def test_cli_marks_a_cluster_of_the_last_report(store: Store, twins: Path) -> None:
    a, b, copy = ids(store, twins, "a.jpg", "b.jpg", "copy_of_a.jpg")
    remember_clusters(store, {7: [a, b]})
    result = CliRunner().invoke(cli, ["not-duplicate", "--db", store.url, "--cluster", "7"])
    assert result.exit_code == 0, result.output
    reopened = open_store(store.url)
    try:
        assert excluded_pairs(reopened) == {tuple(sorted(p)) for p in ((a, b), (copy, b))}
        with reopened.session() as session:
            assert session.scalar(select(Image.id).where(Image.id == a)) == a
    finally:
        reopened.close()
