"""The report as data: clusters from the store, keepers, distances, JSON round trip, CSV."""

from __future__ import annotations

import base64
import copy
import csv
import io
import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from conftest import photo, save_photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from dedupdb.errors import DedupdbError
from dedupdb.hashes import DIHEDRAL_NAMES
from dedupdb.indexing import IndexOptions, index
from dedupdb.render.csv_report import to_csv
from dedupdb.render.json_report import read_json, to_json
from dedupdb.report import (
    SCHEMA_VERSION,
    Member,
    Report,
    ReportCluster,
    ReportOptions,
    ReportPair,
    Summary,
    build_report,
    report_from_clusters,
)
from dedupdb.store import Store, open_store
from dedupdb.store.catalog import load_rows
from dedupdb.store.schema import Image as ImageRow
from dedupdb.store.schema import Root

SEQUENTIAL = IndexOptions(workers=1)


@dataclass(frozen=True)
class Pair:
    """Shaped as match.Pair (INTERFACES.md)."""

    a: int
    b: int
    distance: int
    exact: bool
    transform: str = "identity"


@dataclass
class Cluster:
    """Shaped as cluster.Cluster (INTERFACES.md)."""

    members: list[int]
    exact: bool
    max_distance: int
    pairs: list[Pair] = field(default_factory=list)


def ids_by_name(store: Store) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(ImageRow.id, Root.display_path, ImageRow.display_path).join(Root)
        )
        return {os.path.join(root, rel): image_id for image_id, root, rel in rows}


def cluster_of(store: Store, root: Path, *names: str, exact: bool = False) -> Cluster:
    ids = ids_by_name(store)
    members = sorted(ids[str(root / name)] for name in names)
    pairs = [Pair(a, b, 0 if exact else 2, exact) for a, b in itertools.pairwise(members)]
    return Cluster(members, exact, 0 if exact else 2, pairs)


@pytest.fixture(scope="module")
def indexed_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two pictures with copies: a PNG original, a half-size JPEG, a rotated JPEG, an exact
    copy under a longer path; and an exact pair of a JPEG. Indexed once per module."""
    base = tmp_path_factory.mktemp("library")
    root = base / "photos"
    original = photo(11, (640, 480))
    (root / "orig").mkdir(parents=True)
    original.save(root / "orig" / "sunset.png")
    (root / "copies" / "old").mkdir(parents=True)
    original.resize((320, 240)).save(root / "copies" / "sunset_small.jpg", quality=85)
    original.rotate(90, expand=True).save(root / "copies" / "sunset_rotated.jpg", quality=90)
    shutil.copy(root / "orig" / "sunset.png", root / "copies" / "old" / "sunset.png")
    save_photo(root / "orig" / "tree.jpg", 12, (400, 300), quality=90)
    shutil.copy(root / "orig" / "tree.jpg", root / "copies" / "tree (1).jpg")
    save_photo(root / "orig" / "alone.jpg", 13, quality=90)
    db = base / "library.sqlite"
    opened = open_store(db)
    summary = index(opened, root, SEQUENTIAL)
    opened.close()
    assert summary.failed == 0
    return root, db


@pytest.fixture
def library(indexed_library: tuple[Path, Path], db_path: Path) -> Path:
    """The indexed library, in this test's own copy of the database (the ``store``)."""
    root, db = indexed_library
    shutil.copy(db, db_path)
    return root


@pytest.fixture
def lstore(library: Path, db_path: Path) -> Iterator[Store]:
    opened = open_store(db_path)
    yield opened
    opened.close()


@pytest.fixture
def sample(lstore: Store, library: Path) -> Report:
    clusters = [
        cluster_of(lstore, library, "orig/tree.jpg", "copies/tree (1).jpg", exact=True),
        cluster_of(
            lstore,
            library,
            "orig/sunset.png",
            "copies/sunset_small.jpg",
            "copies/sunset_rotated.jpg",
            "copies/old/sunset.png",
        ),
    ]
    return report_from_clusters(lstore, clusters, ReportOptions(), threshold=10)


def test_keeper_is_the_full_size_lossless_original(sample: Report, library: Path) -> None:
    sunset = next(c for c in sample.clusters if not c.exact)
    keeper = next(m for m in sunset.members if m.keeper)
    assert keeper.path == str(library / "orig" / "sunset.png")
    assert sunset.keeper == keeper.image_id
    assert sunset.members[0] is keeper
    assert sunset.reasons[0] == "largest: 640x480 vs 320x240"
    assert any(r.startswith("better format: PNG vs JPEG") for r in sunset.reasons)


def test_distances_and_transforms_are_relative_to_the_keeper(sample: Report, library: Path) -> None:
    sunset = next(c for c in sample.clusters if not c.exact)
    by_name = {os.path.relpath(m.path, library): m for m in sunset.members}
    assert by_name["orig/sunset.png"].distance == 0
    assert by_name["copies/old/sunset.png"].distance == 0  # identical content
    assert by_name["copies/old/sunset.png"].transform == "identity"
    assert by_name["copies/sunset_small.jpg"].distance <= 6
    assert by_name["copies/sunset_small.jpg"].transform == "identity"
    rotated = by_name["copies/sunset_rotated.jpg"]
    assert rotated.distance <= 6
    assert rotated.transform in ("rot90", "rot270")


def test_without_rotations_the_rotated_copy_is_far(lstore: Store, library: Path) -> None:
    cluster = cluster_of(lstore, library, "orig/sunset.png", "copies/sunset_rotated.jpg")
    report = report_from_clusters(lstore, [cluster], ReportOptions(rotations=False))
    rotated = report.clusters[0].members[1]
    assert rotated.transform == "identity"
    assert rotated.distance > 10


def test_exact_cluster_keeps_the_plain_name(sample: Report, library: Path) -> None:
    tree = next(c for c in sample.clusters if c.exact)
    keeper = next(m for m in tree.members if m.keeper)
    assert keeper.path == str(library / "orig" / "tree.jpg")
    assert tree.reasons == ["identical copies; the others' names look like copies"]
    assert {m.content_hash for m in tree.members} == {keeper.content_hash}


def test_rules_choose_among_exact_copies(lstore: Store, library: Path) -> None:
    cluster = cluster_of(lstore, library, "orig/tree.jpg", "copies/tree (1).jpg", exact=True)
    report = report_from_clusters(lstore, [cluster], ReportOptions(avoid=("orig",)))
    keeper = report.clusters[0].members[0]
    assert keeper.path.endswith("copies/tree (1).jpg")
    assert report.clusters[0].reasons == ["tree.jpg is in an avoided folder (--avoid orig)"]


def test_summary_and_sorting_by_reclaimable_bytes(sample: Report, library: Path) -> None:
    sizes = [c.reclaimable_bytes for c in sample.clusters]
    assert sizes == sorted(sizes, reverse=True)
    assert [c.id for c in sample.clusters] == [1, 2]
    for cluster in sample.clusters:
        assert cluster.reclaimable_bytes == sum(m.size for m in cluster.duplicates)
        assert cluster.reclaimable_bytes == sum(
            os.path.getsize(m.path) for m in cluster.members if not m.keeper
        )
    assert sample.summary.clusters == 2
    assert sample.summary.duplicates == 4
    assert sample.summary.exact_clusters == 1
    assert sample.summary.reclaimable_bytes == sum(sizes)
    assert sample.summary.images == 7
    assert sample.settings["threshold"] == 10


def test_json_round_trip(sample: Report) -> None:
    text = to_json(sample)
    data = json.loads(text)
    assert data["schema"] == "dedupdb-report"
    assert data["version"] == SCHEMA_VERSION
    assert list(data)[:2] == ["schema", "version"]
    assert read_json(text) == sample
    assert Report.from_dict(sample.to_dict()) == sample


def test_json_has_the_agreed_fields(sample: Report) -> None:
    """The fields `dedupdb apply` relies on (INTERFACES.md); more may be added, never fewer."""
    data = json.loads(to_json(sample))
    assert {"schema", "version", "generated_at", "database", "settings", "summary",
            "clusters"} <= set(data)  # fmt: skip
    assert {"hash", "threshold", "rotations", "ssim"} <= set(data["settings"])
    assert {"clusters", "duplicates", "reclaimable_bytes"} <= set(data["summary"])
    cluster = data["clusters"][0]
    assert {"id", "exact", "max_distance", "reclaimable_bytes", "keeper", "reasons",
            "members"} <= set(cluster)  # fmt: skip
    member = cluster["members"][0]
    assert {"image_id", "path", "path_bytes_b64", "size", "mtime_ns", "content_hash", "width",
            "height", "format", "distance", "transform", "score", "score_parts",
            "keeper"} <= set(member)  # fmt: skip
    assert len(member["content_hash"]) == 64
    assert cluster["keeper"] in [m["image_id"] for m in cluster["members"]]


def test_a_user_edited_keeper_is_honoured(sample: Report) -> None:
    data = sample.to_dict()
    cluster = data["clusters"][1]
    new_keeper = cluster["members"][-1]["image_id"]
    cluster["keeper"] = new_keeper  # the user edits only the cluster's keeper
    parsed = Report.from_dict(data)
    members = parsed.clusters[1].members
    assert [m.image_id for m in members if m.keeper] == [new_keeper]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema="other"), "not a dedupdb report"),
        (lambda d: d.update(version=SCHEMA_VERSION + 1), "newer"),
        (lambda d: d["clusters"][0].update(keeper=-5), "not a member"),
        (lambda d: d["clusters"][0]["members"][0].pop("path"), "damaged"),
        (lambda d: d.pop("clusters"), "damaged"),
    ],
)
def test_bad_report_documents_are_clear_errors(sample: Report, edit: object, message: str) -> None:
    data = sample.to_dict()
    edit(data)  # type: ignore[operator]
    with pytest.raises(DedupdbError, match=message):
        Report.from_dict(data)


def test_unknown_fields_are_ignored(sample: Report) -> None:
    data = sample.to_dict()
    data["clusters"][0]["note"] = "added by a script"
    data["clusters"][0]["members"][0]["tag"] = 1
    assert Report.from_dict(data) == sample


def test_read_json_rejects_text_that_is_not_json() -> None:
    with pytest.raises(DedupdbError, match="not a JSON report"):
        read_json("{nope")


def test_csv_has_one_row_per_member(sample: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(sample))))
    assert len(rows) == sum(len(c.members) for c in sample.clusters)
    keepers = [r for r in rows if r["keeper"] == "1"]
    assert len(keepers) == len(sample.clusters)
    assert all(r["reasons"] for r in keepers)
    assert all(not r["reasons"] for r in rows if r["keeper"] == "0")
    assert {r["path"] for r in rows} == {m.path for c in sample.clusters for m in c.members}


def test_non_utf8_path_is_carried_exactly(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    name = b"caf\xe9.jpg"  # Latin-1, not valid UTF-8
    path = os.path.join(os.fsencode(root), name)
    photo(21).save(io_bytes := io.BytesIO(), "JPEG", quality=90)
    with open(path, "wb") as f:
        f.write(io_bytes.getvalue())
    shutil.copy(path, os.path.join(os.fsencode(root), b"plain.jpg"))
    index(store, root, SEQUENTIAL)
    with store.session() as session:
        members = sorted(session.scalars(select(ImageRow.id)))
    report = report_from_clusters(store, [Cluster(members, True, 0)])
    odd = next(m for c in report.clusters for m in c.members if m.path_bytes_b64)
    assert odd.raw_path == path
    assert os.path.exists(odd.raw_path)
    assert odd.path.endswith("caf\\xe9.jpg")
    assert read_json(to_json(report)) == report


def test_a_member_gone_from_the_database_is_left_out(lstore: Store, library: Path) -> None:
    cluster = cluster_of(lstore, library, "orig/tree.jpg", "copies/tree (1).jpg", exact=True)
    cluster.members.append(10**6)
    report = report_from_clusters(lstore, [cluster])
    assert len(report.clusters[0].members) == 2
    lonely = Cluster([cluster.members[0], 10**6], True, 0)
    assert report_from_clusters(lstore, [lonely]).clusters == []


def test_rows_matching_loaded_give_the_same_report(lstore: Store, library: Path) -> None:
    """build_report hands the rows matching loaded to the report (no second read): the same
    report as reading the clusters' rows from the database, a vanished member included."""
    clusters = [
        cluster_of(lstore, library, "orig/tree.jpg", "copies/tree (1).jpg", exact=True),
        cluster_of(lstore, library, "orig/sunset.png", "copies/sunset_rotated.jpg"),
    ]
    clusters[1].members.append(10**6)
    rows = load_rows(lstore, "phash", "dhash")
    stamp = datetime(2026, 1, 1, tzinfo=timezone.utc)
    shared = report_from_clusters(lstore, clusters, rows=rows, generated_at=stamp)
    assert shared == report_from_clusters(lstore, clusters, generated_at=stamp)
    assert [len(c.members) for c in shared.clusters] == [2, 2]


def test_json_the_fast_encoder_refuses_is_still_written(sample: Report) -> None:
    """orjson refuses integers beyond 64 bits; such a cluster is written by the json module
    (a user's edited report may hold anything), and reads back the same."""
    edited = copy.deepcopy(sample)
    edited.clusters[0].members[0].mtime_ns = 2**70
    text = to_json(edited)
    assert json.loads(text)["clusters"][0]["members"][0]["mtime_ns"] == 2**70
    assert read_json(text) == edited
    assert json.loads(to_json(sample)) == json.loads(json.dumps(sample.to_dict()))


def test_empty_database(store: Store) -> None:
    report = build_report(store)
    assert report.clusters == []
    assert report.summary.clusters == 0
    assert report.summary.images == 0
    assert read_json(to_json(report)) == report
    assert to_csv(report).count("\n") == 1  # the header only


def test_database_with_errors_only(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    Image.new("RGB", (20, 20)).save(root / "tiny.png")  # below --min-resolution: skipped
    summary = index(store, root, SEQUENTIAL)
    assert summary.failed == 2
    report = build_report(store)
    assert report.clusters == []
    assert report.summary.failures == 3
    assert report.summary.images == 0
    assert read_json(to_json(report)) == report


def test_options_are_validated() -> None:
    with pytest.raises(DedupdbError, match="unknown hash"):
        ReportOptions(hash="md5")
    with pytest.raises(DedupdbError, match="ssim"):
        ReportOptions(ssim=2.0)


# ----------------------------------------------------------------------------- property

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
members = st.builds(
    Member,
    image_id=st.integers(1, 2**62),
    path=texts.map(lambda t: "/" + t),
    path_bytes_b64=st.none() | st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()),
    size=st.integers(0, 2**62),
    mtime_ns=st.integers(-(2**62), 2**62),
    content_hash=st.binary(min_size=32, max_size=32).map(bytes.hex),
    width=st.integers(1, 100_000),
    height=st.integers(1, 100_000),
    format=st.sampled_from(["JPEG", "PNG", "WEBP", "HEIF"]),
    distance=st.integers(0, 256),
    transform=st.sampled_from(list(DIHEDRAL_NAMES)),
    score=st.floats(0, 1),
    score_parts=st.dictionaries(st.sampled_from(["resolution", "format", "exif"]), st.floats(0, 1)),
    keeper=st.just(False),
    lossless=st.booleans(),
    sharpness=st.floats(0, 1e6),
    exif_tags=st.integers(0, 500),
    taken_at=st.none() | texts,
    camera=st.none() | texts,
    picture_width=st.none() | st.integers(1, 100_000),
    picture_height=st.none() | st.integers(1, 100_000),
)


@st.composite
def clusters(draw: st.DrawFn) -> ReportCluster:
    group = draw(st.lists(members, min_size=2, max_size=4, unique_by=lambda m: m.image_id))
    group[0].keeper = True
    return ReportCluster(
        id=draw(st.integers(1, 10**6)),
        exact=draw(st.booleans()),
        max_distance=draw(st.integers(0, 64)),
        reclaimable_bytes=sum(m.size for m in group[1:]),
        keeper=group[0].image_id,
        reasons=draw(st.lists(texts, max_size=3)),
        members=group,
        pairs=[
            ReportPair(group[0].image_id, m.image_id, m.distance, False, m.transform)
            for m in group[1:]
        ],
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(clusters(), max_size=4), texts)
def test_any_report_survives_json(found: list[ReportCluster], database: str) -> None:
    report = Report(
        generated_at="2026-11-25T10:00:00Z",
        database=database,
        settings={"hash": "phash", "threshold": 10, "rotations": True, "ssim": None},
        summary=Summary(clusters=len(found)),
        clusters=found,
    )
    assert read_json(to_json(report)) == report


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def copies(tmp_path: Path, store: Store) -> Path:
    """One picture with the copies users accumulate, and two unrelated pictures."""
    root = tmp_path / "library"
    original = photo(51, (640, 480))
    (root / "camera").mkdir(parents=True)
    (root / "edits").mkdir()
    original.save(root / "camera" / "IMG_0001.png")
    original.resize((320, 240)).save(root / "edits" / "small.jpg", quality=80)
    original.save(root / "edits" / "recompressed.jpg", quality=60)
    original.transpose(Image.Transpose.ROTATE_90).save(root / "edits" / "rotated.jpg", quality=90)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        root / "edits" / "mirrored.jpg", quality=90
    )
    original.crop((8, 6, 632, 474)).save(root / "edits" / "cropped.jpg", quality=90)
    shutil.copy(root / "camera" / "IMG_0001.png", root / "edits" / "IMG_0001 (1).png")
    save_photo(root / "camera" / "other.jpg", 52, (640, 480), quality=90)
    save_photo(root / "camera" / "third.png", 53, (480, 640))
    assert index(store, root, SEQUENTIAL).failed == 0
    return root


COPY_NAMES = {"IMG_0001.png", "small.jpg", "recompressed.jpg", "rotated.jpg", "mirrored.jpg",
              "cropped.jpg", "IMG_0001 (1).png"}  # fmt: skip


def test_end_to_end_clusters_of_real_copies(store: Store, copies: Path) -> None:
    report = build_report(store)
    assert report.summary.images == 9
    [cluster] = report.clusters
    assert {Path(m.path).name for m in cluster.members} == COPY_NAMES
    assert cluster.exact is False
    keeper = cluster.members[0]
    assert keeper.path == str(copies / "camera" / "IMG_0001.png")
    assert cluster.reasons[0] == "largest: 640x480 vs 624x468"
    by_name = {Path(m.path).name: m for m in cluster.members}
    assert by_name["IMG_0001 (1).png"].distance == 0
    assert by_name["rotated.jpg"].transform in ("rot90", "rot270")
    assert by_name["mirrored.jpg"].transform == "mirror"
    assert all(m.distance <= report.settings["threshold"] for m in cluster.members)
    assert report.summary.reclaimable_bytes == sum(m.size for m in cluster.members[1:])


def test_end_to_end_without_rotations(store: Store, copies: Path) -> None:
    report = build_report(store, ReportOptions(rotations=False))
    names = {Path(m.path).name for c in report.clusters for m in c.members}
    assert "rotated.jpg" not in names
    assert "mirrored.jpg" not in names
    assert "small.jpg" in names


def test_end_to_end_rules_pick_the_keeper(store: Store, copies: Path) -> None:
    report = build_report(store, ReportOptions(prefer=("edits",), avoid=("*.png",)))
    keeper = report.clusters[0].members[0]
    assert Path(keeper.path).parent.name == "edits"
    assert not keeper.path.endswith(".png")
    assert report.clusters[0].reasons[0] == "in a preferred folder (--prefer edits)"


def test_not_duplicates_stay_out_of_later_reports(store: Store, copies: Path) -> None:
    from dedupdb.decisions import image_ids_for_paths, mark_not_duplicates

    first = build_report(store)
    assert first.summary.excluded_pairs == 0
    small = image_ids_for_paths(store, [str(copies / "edits" / "small.jpg")])
    everything_else = [m.image_id for m in first.clusters[0].members if m.image_id not in small]
    for other in everything_else:
        mark_not_duplicates(store, [small[0], other])
    later = build_report(store)
    names = {Path(m.path).name for c in later.clusters for m in c.members}
    assert "small.jpg" not in names
    assert names == COPY_NAMES - {"small.jpg"}
    assert later.summary.excluded_pairs == len(everything_else)


REPORT_SIDE = ("search.py", "match.py", "cluster.py", "keeper.py", "keeper_rules.py",
               "localmatch.py", "report.py", "render/html.py", "render/json_report.py",
               "render/csv_report.py")  # fmt: skip


@pytest.mark.parametrize("module", REPORT_SIDE)
def test_the_report_side_holds_no_sql(module: str) -> None:
    """The stages past the store read through ``store.catalog``: no SQL, session or driver."""
    import dedupdb

    source = (Path(dedupdb.__file__).parent / module).read_text(encoding="utf-8")
    for word in ("sqlalchemy", "sqlite3", "select(", "session", ".engine", "store.schema"):
        assert word not in source, (module, word)


def test_a_sepia_copy_is_reported_with_its_picture_and_named(tmp_path: Path) -> None:
    """A sepia copy of a one-hue (blue) picture and a smaller copy: one cluster, the original
    kept, the sepia copy's pairs and the keeper's reason say "same picture, sepia"."""
    from click.testing import CliRunner
    from test_match import BLUE, one_hue, sepia

    from dedupdb.cli import cli

    root = tmp_path / "photos"
    root.mkdir()
    blue = one_hue(21, *BLUE)
    blue.save(root / "blue.jpg", quality=95)
    sepia(blue).save(root / "blue-sepia.jpg", quality=95)
    blue.resize((200, 150)).save(root / "blue-small.jpg", quality=90)
    db = ["--db", str(tmp_path / "d.sqlite")]
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(root), *db, "-q"]).exit_code == 0
    out = tmp_path / "r.json"
    made = runner.invoke(cli, ["report", "--json", str(out), "--quiet", *db])
    assert made.exit_code == 0, made.output
    [cluster] = json.loads(out.read_text(encoding="utf-8"))["clusters"]
    keeper = next(m for m in cluster["members"] if m["keeper"])
    assert Path(keeper["path"]).name == "blue.jpg"
    names = {m["image_id"]: Path(m["path"]).name for m in cluster["members"]}
    kinds = {frozenset((names[p["a"]], names[p["b"]])): p["kind"] for p in cluster["pairs"]}
    assert kinds == {
        frozenset(("blue.jpg", "blue-sepia.jpg")): "same picture, sepia",
        frozenset(("blue-small.jpg", "blue-sepia.jpg")): "same picture, sepia",
        frozenset(("blue.jpg", "blue-small.jpg")): None,
    }
    assert "original colours (another copy is the same picture, sepia)" in cluster["reasons"]


def test_a_thumbnail_is_reported_as_a_copy_of_its_picture(tmp_path: Path) -> None:
    """Through the command line, with the defaults: a 160x90 thumbnail (made later, so the
    oldest-file tie-break cannot decide) joins its 1600x900 picture, which is kept; a 20x20
    picture is skipped; ``index --help`` gives the floor."""
    from click.testing import CliRunner

    from dedupdb.cli import cli

    root = tmp_path / "photos"
    root.mkdir()
    picture = photo(33, (1600, 900))
    picture.save(root / "picture.jpg", quality=90)
    picture.resize((160, 90), Image.Resampling.LANCZOS).save(root / "thumb.png")
    os.utime(root / "picture.jpg", (2_000_000_000, 2_000_000_000))  # the thumbnail is older
    Image.new("RGB", (20, 20), (200, 30, 30)).save(root / "spacer.png")
    db = ["--db", str(tmp_path / "d.sqlite")]
    runner = CliRunner()
    indexed = runner.invoke(cli, ["index", str(root), *db])
    assert indexed.exit_code == 0, indexed.output
    assert re.search(r"new\s+2\n", indexed.output) and re.search(r"skipped\s+1\n", indexed.output)
    out = tmp_path / "r.json"
    made = runner.invoke(cli, ["report", "--json", str(out), "--quiet", *db])
    assert made.exit_code == 0, made.output
    [cluster] = json.loads(out.read_text(encoding="utf-8"))["clusters"]
    members = {Path(m["path"]).name: m for m in cluster["members"]}
    assert set(members) == {"picture.jpg", "thumb.png"}
    assert members["picture.jpg"]["keeper"]
    helped = runner.invoke(cli, ["index", "--help"])
    assert "--min-resolution PX" in helped.output and "default: 32" in helped.output


def _tilted_copy(picture: Image.Image, degrees: float, *, corners: bool) -> Image.Image:
    """``picture`` turned: whole, in a larger frame with black corners (``corners``), or cut
    to the largest centred rectangle of its shape inside the turned picture."""
    import math

    turned = picture.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    if corners:
        return turned
    w, h = picture.size
    a = math.radians(abs(degrees))
    scale = min(w, h) / (max(w, h) * math.sin(a) + min(w, h) * math.cos(a))
    cw, ch = round(w * scale), round(h * scale)
    left, top = (turned.width - cw) // 2, (turned.height - ch) // 2
    return turned.crop((left, top, left + cw, top + ch))


@pytest.mark.slow
def test_the_keeper_is_the_picture_not_a_larger_tilted_copy_with_corners(tmp_path: Path) -> None:
    """A copy turned by 25 degrees in a frame with black corners holds the whole picture in
    more pixels: ranked as the picture it holds (the corners as added borders), it is not kept
    over the picture. A copy turned and cut inside the picture is ranked as it always was."""
    from click.testing import CliRunner
    from skimage import data

    from dedupdb.cli import cli

    root = tmp_path / "photos"
    root.mkdir()
    picture = Image.fromarray(data.astronaut()).convert("RGB")
    picture.save(root / "original.jpg", quality=92)
    _tilted_copy(picture, 25, corners=True).save(root / "tilted_corners.jpg", quality=92)
    _tilted_copy(picture, -10, corners=False).save(root / "tilted_inside.jpg", quality=92)
    db, out = tmp_path / "db.sqlite", tmp_path / "report.json"
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(root), "--db", str(db), "-q", "--features"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["report", "--db", str(db), "--json", str(out), "-q", "--deep"])
    assert result.exit_code == 0, result.output
    clusters = json.loads(out.read_text())["clusters"]
    assert len(clusters) == 1
    (cluster,) = clusters
    names = {m["image_id"]: Path(m["path"]).name for m in cluster["members"]}
    assert set(names.values()) == {"original.jpg", "tilted_corners.jpg", "tilted_inside.jpg"}
    assert names[cluster["keeper"]] == "original.jpg", cluster["reasons"]


def test_filled_corners_are_flat_and_of_one_level() -> None:
    from dedupdb.report import filled_corners

    rng = np.random.default_rng(3)
    picture = rng.uniform(0, 255, (32, 32))
    framed = picture.copy()
    for rows, cols in ((slice(0, 3), slice(0, 3)), (slice(0, 3), slice(-3, None))):
        framed[rows, cols] = 0
    for rows, cols in ((slice(-3, None), slice(0, 3)), (slice(-3, None), slice(-3, None))):
        framed[rows, cols] = 2
    assert filled_corners(framed)
    assert not filled_corners(picture)
    framed[-2:, -2:] = 200  # one corner of another level: not one fill
    assert not filled_corners(framed)
