"""The Alembic migrations: one linear history, each revision explained, and the schema they build
is exactly what ``dedupdb/store/schema.py`` describes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from dedupdb.store import alembic_config, head_revision, migrations_dir, open_store
from dedupdb.store.schema import Base


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def test_one_linear_history_with_numbered_explained_revisions() -> None:
    directory = script()
    assert len(directory.get_heads()) == 1, "branched history: set down_revision to main's head"
    revisions = list(directory.walk_revisions())  # head first
    assert revisions[-1].down_revision is None
    for number, revision in enumerate(reversed(revisions), start=1):
        assert revision.revision == f"{number:04d}", revision.revision
        assert revision.path is not None
        assert Path(revision.path).name.startswith(f"{number:04d}_")
        assert revision.doc and revision.doc.strip(), f"{revision.revision} says not why"
    assert head_revision() == revisions[0].revision


def test_empty_database_to_head_matches_the_models(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    open_store(db).close()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert context.get_current_revision() == head_revision()
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    db = tmp_path / "roundtrip.sqlite"
    open_store(db).close()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        assert {"images", "failures", "roots", "runs", "settings"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_migrations_are_found_in_the_source_tree() -> None:
    found = migrations_dir()
    assert (found / "env.py").is_file()
    assert any((found / "versions").glob("0001_*.py"))
