"""Two `dedupdb index` processes creating one new database at the same moment: one creates
and migrates it, the other waits for that and then either indexes too or says the database is
busy. Real processes, started together on a start line, many times over."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import photo_files
from pgserver import PostgresServer, new_database
from sqlalchemy import event, func, select

from dedupdb.store import head_revision, open_store
from dedupdb.store.images import ensure_root
from dedupdb.store.schema import Image, Root

pytestmark = pytest.mark.slow

# Loads what a run loads, then waits for the start line (a file) and runs the real command: the
# two processes then reach the new database within a millisecond or so of each other.
RACER = """
import os, sys, time
import alembic.command, alembic.script, dedupdb.cli, dedupdb.indexing, dedupdb.store
ready, start = sys.argv[1:3]
open(ready, "w").close()
while not os.path.exists(start):
    time.sleep(0.0005)
sys.argv = ["dedupdb", *sys.argv[3:]]
dedupdb.cli.main()
"""

TRIALS = 6


def race(tmp_path: Path, db: str, root: Path, trial: int) -> list[tuple[int, str]]:
    """Two index runs of ``root`` into ``db``, started together; (exit code, stderr) each."""
    start = tmp_path / f"start-{trial}"
    ready = [tmp_path / f"ready-{trial}-{n}" for n in range(2)]
    args = ["index", str(root), "--db", db, "--workers", "1", "-q"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(here), str(start), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for here in ready
    ]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready):  # both loaded dedupdb, waiting at the start line
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
        time.sleep(0.005)
    start.touch()
    return [(proc.wait(timeout=120), proc.communicate()[1]) for proc in procs]


def assert_one_indexed_and_the_other_clear(outcomes: list[tuple[int, str]]) -> None:
    for code, err in outcomes:
        assert "already exists" not in err and "unexpected" not in err, err
        assert "Traceback" not in err, err
        assert code == 0 or (code == 1 and "busy" in err), (code, err)
    assert any(code == 0 for code, _ in outcomes), outcomes


def assert_at_head_with_images(db: Path | str, count: int) -> None:
    """The race left the database at the newest schema, with every file indexed once."""
    store = open_store(db, create=False)
    try:
        assert store.schema_version == head_revision()
        with store.session() as session:
            assert session.execute(select(func.count(Image.id))).scalar_one() == count
    finally:
        store.close()


def test_two_index_runs_creating_one_new_sqlite_database(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    photo_files(root, 3, (160, 120))
    for trial in range(TRIALS):
        db = tmp_path / f"new-{trial}.sqlite"
        assert_one_indexed_and_the_other_clear(race(tmp_path, str(db), root, trial))
        assert_at_head_with_images(db, 3)
        assert not list(tmp_path.glob(f"new-{trial}.sqlite.before-*"))  # nothing to back up


def test_two_index_runs_creating_one_new_postgresql_database(
    tmp_path: Path, postgresql_server: PostgresServer
) -> None:
    root = tmp_path / "photos"
    photo_files(root, 3, (160, 120))
    for trial in range(TRIALS // 2):
        with new_database(postgresql_server) as url:
            assert_one_indexed_and_the_other_clear(race(tmp_path, url, root, trial))
            assert_at_head_with_images(url, 3)


def test_two_runs_adding_one_new_root_at_once_share_its_row(db_path: Path) -> None:
    """The other run inserts the root between this run's look and its insert: this run must
    take that row, not fail on the unique path."""
    first, second = open_store(db_path), open_store(db_path)
    root = os.fsencode(db_path.parent / "photos")
    interleaved: list[int] = []

    def first_inserts_in_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ROOTS") and not interleaved:
            interleaved.append(ensure_root(first, root))

    event.listen(second.engine, "before_cursor_execute", first_inserts_in_between)
    try:
        assert ensure_root(second, root) == interleaved[0]
        with second.session() as session:
            assert session.execute(select(func.count(Root.id))).scalar_one() == 1
    finally:
        first.close()
        second.close()
