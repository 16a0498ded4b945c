"""The store's promise: the same code runs on PostgreSQL through a SQLAlchemy URL.

Each scenario indexes the same generated photo tree into SQLite and into a real PostgreSQL
database (a throwaway cluster, see pgserver.py) and checks that both hold the same rows. The
whole suite can also run on PostgreSQL with ``pytest --backend postgresql``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions, index
from dedupdb.library import prune, status
from dedupdb.store import Store, head_revision, open_store
from dedupdb.store.schema import Base, Failure, Image, Root

SEQUENTIAL = IndexOptions(workers=1)

# Every stored column that depends on the files, not on when or where the run happened.
IMAGE_COLUMNS = [
    c.name for c in Image.__table__.columns if c.name not in ("id", "root_id", "indexed_at")
]


def snapshot(store: Store) -> dict[str, Any]:
    """What the database says about the files, independent of ids and clocks."""
    with store.session() as session:
        images = sorted(
            tuple(row)
            for row in session.execute(
                select(*(getattr(Image, c) for c in IMAGE_COLUMNS), Root.display_path).join(Root)
            )
        )
        failures = sorted(
            tuple(row)
            for row in session.execute(
                select(Failure.display_path, Failure.kind, Failure.reason, Failure.size)
            )
        )
    return {"images": images, "failures": failures}


@pytest.fixture
def pg_store(migrated_postgresql_url: str) -> Iterator[Store]:
    opened = open_store(migrated_postgresql_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "side-by-side.sqlite")
    yield opened
    opened.close()


def both(pg_store: Store, sqlite_store: Store, root: Path) -> tuple[Any, Any]:
    """Index root into both databases; the two summaries, without their timings."""
    summaries = []
    for store in (pg_store, sqlite_store):
        summary = index(store, root, SEQUENTIAL).to_dict()
        summary.pop("seconds")
        summaries.append(summary)
    assert snapshot(pg_store) == snapshot(sqlite_store)
    return summaries[0], summaries[1]


def test_migrations_create_the_schema_at_head(postgresql_url: str) -> None:
    pg_store = open_store(postgresql_url)  # an empty database: every migration runs
    assert pg_store.dialect == "postgresql"
    assert pg_store.schema_version == head_revision()
    tables = set(inspect(pg_store.engine).get_table_names())
    assert {"roots", "images", "failures", "runs", "settings", "alembic_version"} <= tables
    with pg_store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        # The models' comments reach PostgreSQL's catalogue.
        comment = conn.execute(text("SELECT obj_description('images'::regclass)")).scalar_one()
    assert version == head_revision()
    assert comment and "indexed image" in comment
    with pg_store.engine.connect() as conn:  # comments and types too, which SQLite has not
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    pg_store.close()
    reopened = open_store(postgresql_url)  # at head already: nothing to do
    assert reopened.schema_version == head_revision()
    reopened.close()


def test_index_matches_sqlite(pg_store: Store, sqlite_store: Store, photo_tree: Path) -> None:
    pg, lite = both(pg_store, sqlite_store, photo_tree)
    assert pg == lite
    assert pg["new"] == 6 and pg["failed"] == 0


def test_rerun_touches_nothing(pg_store: Store, sqlite_store: Store, photo_tree: Path) -> None:
    both(pg_store, sqlite_store, photo_tree)
    before = snapshot(pg_store)
    pg, lite = both(pg_store, sqlite_store, photo_tree)
    assert pg == lite
    assert pg["unchanged"] == 6 and pg["new"] == pg["changed"] == pg["moved"] == 0
    assert snapshot(pg_store) == before


def test_moved_changed_and_deleted_files(
    pg_store: Store, sqlite_store: Store, photo_tree: Path
) -> None:
    from conftest import save_photo

    both(pg_store, sqlite_store, photo_tree)
    (photo_tree / "moved").mkdir()
    os.rename(photo_tree / "cat.jpg", photo_tree / "moved" / "kitten.jpg")
    (photo_tree / "2025" / "snow.jpg").unlink()
    save_photo(photo_tree / "2024" / "beach.jpg", 99, quality=80)  # same name, new picture
    pg, lite = both(pg_store, sqlite_store, photo_tree)
    assert pg == lite
    assert (pg["moved"], pg["changed"], pg["unchanged"]) == (1, 1, 3)
    with pg_store.session() as session:
        statuses = dict(session.execute(select(Image.display_path, Image.status)).all())
    assert statuses["moved/kitten.jpg"] == "present"
    assert "cat.jpg" not in statuses
    assert statuses["2025/snow.jpg"] == "missing"
    assert prune(pg_store) == 1
    assert status(pg_store).images == 5


def test_failures_are_recorded_alike(
    pg_store: Store, sqlite_store: Store, photo_tree: Path
) -> None:
    (photo_tree / "empty.jpg").write_bytes(b"")
    (photo_tree / "notes.png").write_text("not a picture")
    data = (photo_tree / "2024" / "forest.jpg").read_bytes()
    (photo_tree / "truncated.jpg").write_bytes(data[: len(data) // 3])
    from conftest import save_photo

    save_photo(photo_tree / "tiny.png", 7, (40, 30))
    pg, lite = both(pg_store, sqlite_store, photo_tree)
    assert pg == lite
    assert pg["failed"] >= 2 and pg["skipped"] == 1
    assert {f["path"] for f in pg["failures"]} >= {"empty.jpg", "notes.png"}
    again, _ = both(pg_store, sqlite_store, photo_tree)
    assert again["known_bad"] == pg["failed"] + pg["skipped"]
    assert again["failed"] == 0


def test_undecodable_names_survive(pg_store: Store, sqlite_store: Store, tmp_path: Path) -> None:
    from conftest import save_photo

    root = tmp_path / "names"
    save_photo(root / "plain.jpg", 1)
    raw = os.path.join(os.fsencode(root), b"caf\xe9-\xff.jpg")  # Latin-1, not UTF-8
    shutil.copyfile(root / "plain.jpg", os.fsdecode(raw))
    save_photo(root / "ünïcødé 😀.png", 2)
    both(pg_store, sqlite_store, root)
    with pg_store.session() as session:
        relpaths = set(session.execute(select(Image.relpath)).scalars())
    assert b"caf\xe9-\xff.jpg" in relpaths
    assert "ünïcødé 😀.png".encode() in relpaths


def test_hash_parameters_are_enforced(pg_store: Store, photo_tree: Path) -> None:
    from dedupdb.errors import ParameterMismatchError

    index(pg_store, photo_tree, SEQUENTIAL)
    with pytest.raises(ParameterMismatchError):
        index(pg_store, photo_tree, IndexOptions(workers=1, hash_size=16))
    summary = index(pg_store, photo_tree, IndexOptions(workers=1, hash_size=16, rehash=True))
    assert summary.changed == 6


def test_cli_on_a_postgresql_url(postgresql_url: str, photo_tree: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["index", str(photo_tree), "--db", postgresql_url, "--json", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["new"] == 6
    result = runner.invoke(cli, ["status", "--json"], env={"DEDUPDB_DB": postgresql_url})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["images"] == 6
    assert data["database"].startswith("postgresql+psycopg://")
    assert data["size_bytes"] > 0


def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    runner = CliRunner()
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    result = runner.invoke(cli, ["status", "--db", url])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) <= 2
    assert "secret" not in result.output
    assert "Traceback" not in result.output


def test_report_apply_undo_and_decisions_on_postgresql(
    migrated_postgresql_url: str, photo_tree: Path, tmp_path: Path
) -> None:
    """The stages after index (report, not-duplicate, apply, undo, history) on PostgreSQL."""
    from conftest import save_photo

    shutil.copyfile(photo_tree / "cat.jpg", photo_tree / "2025" / "cat copy.jpg")
    save_photo(photo_tree / "2024" / "forest-small.jpg", 2, (160, 120), quality=70)
    before = {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()}
    runner = CliRunner(env={"DEDUPDB_DB": migrated_postgresql_url})

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, f"dedupdb {' '.join(args)}: {result.output}"
        return result.output

    def groups(report: Path) -> list[list[str]]:
        clusters = json.loads(report.read_text())["clusters"]
        return sorted(sorted(os.path.basename(m["path"]) for m in c["members"]) for c in clusters)

    report = tmp_path / "report.json"
    for db in (str(tmp_path / "same.sqlite"), migrated_postgresql_url):  # SQLite, then PostgreSQL
        ok("index", str(photo_tree), "--workers", "1", "--quiet", "--db", db)
        ok("report", "--json", str(report), "--html", str(tmp_path / "r.html"), "-q", "--db", db)
        if db.endswith(".sqlite"):
            on_sqlite = groups(report)
    assert groups(report) == on_sqlite
    assert ["cat copy.jpg", "cat.jpg"] in on_sqlite

    quarantine = tmp_path / "quarantine"
    plan = json.loads(ok("apply", str(report), "--move-to", str(quarantine), "--json"))
    assert plan  # a dry run: nothing moved yet
    assert {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()} == before
    ok("apply", str(report), "--move-to", str(quarantine), "--yes", "--quiet")
    remaining = {p for p in photo_tree.rglob("*") if p.is_file()}
    assert len(remaining) == len(before) - len(on_sqlite)
    assert "1" in ok("history")
    ok("undo")
    assert {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()} == before

    ok("not-duplicate", str(photo_tree / "2024" / "forest.jpg"), str(photo_tree / "cat.jpg"))
    listed = ok("not-duplicate", "--list")
    assert "forest.jpg" in listed and "cat.jpg" in listed
