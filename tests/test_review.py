"""Review decisions (dedupdb.review): stored by content, honoured by plan/apply (so by
`dedupdb apply` too), lapsing when a file changes. Real photos, real SQLite, the real index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from review_corpus import make_library
from sqlalchemy import select

from dedupdb import index, review
from dedupdb.actions import MOVE, apply, plan_actions
from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions
from dedupdb.report import Report, ReportCluster, build_report
from dedupdb.store import Store
from dedupdb.store.schema import PRESENT, QUARANTINED, Image

ONE = IndexOptions(workers=1)


@pytest.fixture
def library(tmp_path: Path, store: Store) -> Path:
    root = make_library(tmp_path)
    index(store, root, ONE)
    return root


def _cluster_with(report: Report, name: str) -> ReportCluster:
    return next(c for c in report.clusters if any(name in m.path for m in c.members))


def _status(store: Store, path: str) -> str:
    with store.session() as session:
        rows = session.execute(select(Image.display_path, Image.status)).all()
    return next(status for shown, status in rows if shown.endswith(path))


def test_a_chosen_keeper_is_what_dedupdb_apply_keeps(
    store: Store, library: Path, tmp_path: Path
) -> None:
    report = build_report(store)
    cluster = _cluster_with(report, "p0 copy.jpg")
    chosen = next(m for m in cluster.members if m.path.endswith("exports/p0-small.png"))
    assert chosen.image_id != cluster.keeper  # not the suggestion: the choice must matter
    review.choose_keepers(store, cluster, [chosen.image_id])
    url = store.url
    store.close()

    quarantine = str(tmp_path / "quarantine")
    made = CliRunner().invoke(cli, ["report", "--db", url, "--quiet"])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(cli, ["apply", "--db", url, "--move-to", quarantine, "--yes"])
    assert result.exit_code == 0, result.output
    assert (library / "exports" / "p0-small.png").exists()
    assert not (library / "originals" / "p0.jpg").exists()
    assert not (library / "Downloads" / "p0 copy.jpg").exists()


def test_keep_several_and_skip(store: Store, library: Path, tmp_path: Path) -> None:
    report = build_report(store)
    several = _cluster_with(report, "p0 copy.jpg")
    kept = [m.image_id for m in several.members if "Downloads" not in m.path]
    review.choose_keepers(store, several, kept)
    skipped = _cluster_with(report, "p3 copy.jpg")
    review.skip(store, skipped)

    plan = plan_actions(store, report, MOVE, quarantine=tmp_path / "q")
    acted = {a.file.image_id for a in plan.actions}
    assert acted & {m.image_id for m in skipped.members} == set()
    assert acted & set(kept) == set()
    assert {m.image_id for m in several.members} - set(kept) <= acted
    assert plan.chosen == 1 and plan.left_alone == 1

    reviewed = plan_actions(store, report, MOVE, quarantine=tmp_path / "q", reviewed_only=True)
    assert {a.cluster for a in reviewed.actions} == {several.id}
    assert reviewed.left_alone == len(report.clusters) - 1


def test_a_decision_survives_a_new_report_and_lapses_when_a_file_changes(
    store: Store, library: Path
) -> None:
    cluster = _cluster_with(build_report(store), "p1 copy.jpg")
    review.skip(store, cluster)
    again = _cluster_with(build_report(store), "p1 copy.jpg")
    assert review.current(again, review.load_choices(store)) is not None

    # A member's content changes (re-saved): another key, so the cluster is shown again.
    changed = library / "exports" / "p1-turned.jpg"
    from PIL import Image as PILImage

    with PILImage.open(changed) as im:
        im.save(changed, quality=60)
    index(store, library, ONE)
    later = _cluster_with(build_report(store), "p1 copy.jpg")
    assert review.key_of(later) != review.key_of(cluster)
    assert review.current(later, review.load_choices(store)) is None


def test_a_keeper_choice_lapses_when_the_keeper_moves(store: Store, library: Path) -> None:
    cluster = _cluster_with(build_report(store), "p0 copy.jpg")
    copy = next(m for m in cluster.members if "Downloads" in m.path)
    review.choose_keepers(store, cluster, [copy.image_id])
    os.rename(library / "Downloads" / "p0 copy.jpg", library / "Downloads" / "renamed.jpg")
    index(store, library, ONE)
    later = _cluster_with(build_report(store), "renamed.jpg")
    assert review.key_of(later) == review.key_of(cluster)  # the same pictures ...
    assert review.current(later, review.load_choices(store)) is None  # ... but not that keeper


def test_accept_suggested_records_only_undecided_clusters(store: Store, library: Path) -> None:
    report = build_report(store)
    first = report.clusters[0]
    other = next(m.image_id for m in first.members if m.image_id != first.keeper)
    review.choose_keepers(store, first, [other])
    assert review.accept_suggested(store, report.clusters) == len(report.clusters) - 1
    assert review.accept_suggested(store, report.clusters) == 0
    choices = review.load_choices(store)
    assert review.resolve(first, review.current(first, choices)) == (other, [other])
    assert review.forget(store, first)
    assert review.current(first, review.load_choices(store)) is None


def test_choose_keepers_refuses_a_stranger(store: Store, library: Path) -> None:
    from dedupdb.errors import DedupdbError

    report = build_report(store)
    with pytest.raises(DedupdbError, match="not a member"):
        review.choose_keepers(store, report.clusters[0], [report.clusters[1].keeper])
    with pytest.raises(DedupdbError, match="at least one"):
        review.choose_keepers(store, report.clusters[0], [])


def test_overlay_reads_report_json_as_written(store: Store, library: Path, tmp_path: Path) -> None:
    """The JSON of `dedupdb report --json` (dicts) gives the same keys as the dataclasses."""
    report = build_report(store)
    data = json.loads(json.dumps(report.to_dict()))
    for cluster, written in zip(report.clusters, data["clusters"], strict=True):
        assert review.key_of(cluster) == review.key_of(written)
    cluster = report.clusters[0]
    other = next(m.image_id for m in cluster.members if m.image_id != cluster.keeper)
    review.choose_keepers(store, cluster, [other])
    overlaid = review.overlay(data, review.load_choices(store))
    assert overlaid.report["clusters"][0]["keeper"] == other
    assert data["clusters"][0]["keeper"] == cluster.keeper  # the given dict is not changed
    plan = plan_actions(store, data, MOVE, quarantine=tmp_path / "q")
    result = apply(store, plan)
    assert result.done
    assert _status(store, next(m.path for m in cluster.members if m.image_id == other)[-12:]) == (
        PRESENT
    )
    moved = {a.file.image_id for a in plan.actions if a.cluster == cluster.id}
    with store.session() as session:
        states = set(session.scalars(select(Image.status).where(Image.id.in_(moved))))
    assert states == {QUARANTINED}


def test_cluster_key_is_pinned() -> None:
    """Keys are stored: a changed key function would make every decision lapse silently."""
    cluster = {
        "members": [
            {"image_id": 2, "content_hash": "bb" * 32},
            {"image_id": 1, "content_hash": "aa" * 32},
            {"image_id": 3, "content_hash": "aa" * 32},  # an exact copy counts: multiplicity
        ]
    }
    assert review.key_of(cluster).hex() == "3d9754b5cdf60f36bba4e75320e13fc9"
    assert review.key_of({"members": cluster["members"][:2]}) != review.key_of(cluster)
