"""Opening the database: created at head, older ones backed up and upgraded, newer or foreign
ones refused with a message that names the fix."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, text

from dedupdb.defaults import ENV_VAR, default_database_path
from dedupdb.errors import DatabaseError
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import (
    backup,
    database_url,
    head_revision,
    migrations_dir,
    open_store,
)
from dedupdb.store import engine as store_module


def revision_of(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])


def test_new_database_is_created_at_head_in_wal_mode(db_path: Path) -> None:
    opened = open_store(db_path)
    try:
        assert opened.schema_version == head_revision()
        assert opened.dialect == "sqlite"
        assert opened.sqlite_path == db_path
        with opened.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        assert {"images", "failures", "roots", "runs", "settings", "alembic_version"} <= tables
        assert (opened.size_bytes() or 0) > 0
    finally:
        opened.close()
    assert revision_of(db_path) == head_revision()
    assert not list(db_path.parent.glob("*.bak"))  # nothing to back up for a new file


def test_reopening_at_head_changes_nothing(db_path: Path) -> None:
    open_store(db_path).close()
    open_store(db_path).close()
    assert not list(db_path.parent.glob("*.bak"))


def test_database_from_a_newer_dedupdb_is_refused(db_path: Path) -> None:
    open_store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(DatabaseError) as caught:
        open_store(db_path)
    assert "newer dedupdb" in caught.value.message
    assert "9999_from_the_future" in caught.value.message
    assert caught.value.hint and "pip install -U dedupdb" in caught.value.hint
    assert revision_of(db_path) == "9999_from_the_future"  # untouched


def test_sqlite_file_of_another_program_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
        conn.execute("INSERT INTO recipes VALUES ('soup')")
    with pytest.raises(DatabaseError, match="not a dedupdb database") as caught:
        open_store(db_path)
    assert caught.value.hint and "--db" in caught.value.hint
    with sqlite3.connect(db_path) as conn:  # and left as it was
        assert conn.execute("SELECT name FROM recipes").fetchall() == [("soup",)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"recipes"}


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"these are holiday notes, not a database\n" * 100)
    with pytest.raises(DatabaseError, match="not a dedupdb database or is damaged"):
        open_store(db_path)
    assert db_path.read_bytes().startswith(b"these are holiday notes")


def test_a_folder_given_as_database_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="cannot open the database"):
        open_store(tmp_path)


def test_not_a_url_is_one_clear_error() -> None:
    with pytest.raises(DatabaseError, match="not a database path or URL"):
        open_store("://nothing")
    with pytest.raises(DatabaseError, match="unknown kind of database") as caught:
        open_store("nosuchdialect+x://")
    assert caught.value.hint and "postgresql://" in caught.value.hint


def install_a_newer_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make dedupdb use a copy of its migrations with one more, test-only revision on top of
    head: a database at the real head is then an older database to this "newer dedupdb"."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = head_revision()
    (scripts / "versions" / "9000_test_only.py").write_text(
        f'''"""A test-only revision: adds a table, so the upgrade is visible."""

from alembic import op
import sqlalchemy as sa

revision = "9000_test_only"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("test_only", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("test_only")
'''
    )
    monkeypatch.setattr(store_module, "migrations_dir", lambda: scripts)
    return head


def test_older_database_is_backed_up_then_upgraded(
    tmp_path: Path, photo_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "old.sqlite"
    first = open_store(db_path)  # written by this dedupdb, which is "the older" one
    summary = index(first, photo_tree, IndexOptions(workers=1))
    first.close()
    old_head = install_a_newer_revision(tmp_path, monkeypatch)
    assert revision_of(db_path) == old_head

    upgraded = open_store(db_path)
    try:
        assert upgraded.schema_version == "9000_test_only"
        with upgraded.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM test_only")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM images")).scalar() == summary.new
    finally:
        upgraded.close()
    saved = tmp_path / f"old.sqlite.before-{old_head}.bak"
    assert saved.exists()
    assert revision_of(saved) == old_head
    with sqlite3.connect(saved) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone()[0] == summary.new
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.sqlite_only("backup copies the SQLite file; PostgreSQL is backed up with pg_dump")
def test_online_backup_copies_a_database_in_use(store: store_module.Store, tmp_path: Path) -> None:
    target = backup(store, tmp_path / "copies" / "copy.sqlite")
    assert revision_of(target) == head_revision()


def test_backup_of_postgresql_names_pg_dump(migrated_postgresql_url: str, tmp_path: Path) -> None:
    target = tmp_path / "copy.sqlite"
    opened = store_module.open_store(migrated_postgresql_url)
    try:
        with pytest.raises(DatabaseError, match="backup works on SQLite") as refused:
            backup(opened, target)
    finally:
        opened.close()
    assert refused.value.hint == "use pg_dump for PostgreSQL"
    assert not target.exists()


def test_database_url_from_path_env_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert database_url(tmp_path / "x.sqlite") == f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert database_url("postgresql://u:p@host/db") == "postgresql://u:p@host/db"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert database_url(None) == f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.delenv(ENV_VAR)
    assert database_url(None) == f"sqlite:///{default_database_path()}"
    assert str(default_database_path()).startswith(str(tmp_path / "xdg"))


def test_settings_round_trip(store: store_module.Store) -> None:
    assert store.get_setting("nothing") is None
    with store.transaction() as session:
        store.set_setting(session, "k", {"a": [1, 2]})
    assert store.get_setting("k") == {"a": [1, 2]}


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(store_module.alembic_config()).get_current_head()


def test_quick_head_revision_agrees_with_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store_module.quick_head_revision() == alembic_head() == head_revision()
    install_a_newer_revision(tmp_path, monkeypatch)  # written with double quotes
    assert store_module.quick_head_revision() == alembic_head() == "9000_test_only"


def test_quick_head_revision_reads_annotated_lines_and_gives_up_on_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = install_a_newer_revision(tmp_path, monkeypatch)
    versions = tmp_path / "migrations" / "versions"
    (versions / "9001_annotated.py").write_text(
        '"""Annotated, as newer Alembic templates write it."""\n'
        "from typing import Union\n\n"
        'revision: str = "9001_annotated"\n'
        'down_revision: Union[str, None] = "9000_test_only"\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    assert store_module.quick_head_revision() == alembic_head() == "9001_annotated"
    (versions / "9002_computed.py").write_text(
        '"""A revision id the quick reader cannot see."""\n'
        'revision = "9002" + "_computed"\n'
        'down_revision = "9001_annotated"\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    assert store_module.quick_head_revision() is None
    assert head_revision() == alembic_head() == "9002_computed"  # asked of Alembic instead
    assert head != "9002_computed"


def test_a_database_at_head_opens_without_loading_alembic(db_path: Path) -> None:
    open_store(db_path).close()  # created through Alembic
    code = (
        "import sys\n"
        "from dedupdb.store import open_store\n"
        f"store = open_store({str(db_path)!r})\n"
        "print(store.schema_version, 'alembic' in sys.modules)\n"
        "store.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [head_revision(), "False"]


def test_the_quick_path_still_upgrades_an_older_database_and_refuses_a_newer_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "old.sqlite"
    open_store(db_path).close()
    real_migrations = store_module.migrations_dir
    install_a_newer_revision(tmp_path, monkeypatch)
    assert store_module.quick_head_revision() == "9000_test_only"
    opened = open_store(db_path)  # an older database to this "newer dedupdb": upgraded
    opened.close()
    assert opened.schema_version == revision_of(db_path) == "9000_test_only"
    # Back to the real migrations: this dedupdb is now the older one.
    monkeypatch.setattr(store_module, "migrations_dir", real_migrations)
    with pytest.raises(DatabaseError, match="newer dedupdb"):
        open_store(db_path)
    assert revision_of(db_path) == "9000_test_only"


def test_two_processes_writing_one_setting_at_once_do_not_collide(db_path: Path) -> None:
    """Two reports at once both remember their clusters in one settings row: the second must
    not find the key absent, then fail to insert it because the first just did."""
    first, second = open_store(db_path), open_store(db_path)
    interleaved = []

    def first_writes_in_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SETTINGS") and not interleaved:
            interleaved.append(True)
            with first.transaction() as session:
                first.set_setting(session, "last_report", {"from": "first"})

    event.listen(second.engine, "before_cursor_execute", first_writes_in_between)
    with second.transaction() as session:
        second.set_setting(session, "last_report", {"from": "second"})
    assert interleaved  # the other writer did come in between
    assert first.get_setting("last_report") == {"from": "second"}
    first.engine.dispose()
    second.engine.dispose()


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_device_and_inode_numbers_round_trip_through_their_signed_column(value: int) -> None:
    from dedupdb.store.images import signed64, unsigned64

    assert -(1 << 63) <= signed64(value) < (1 << 63)
    assert unsigned64(signed64(value)) == value
