"""The index's workers started before the command loads its database code: only when the run
will decode files, the same rows as a run that starts them late, and none left behind when the
start-up fails (a database from a newer dedupdb, a busy database)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import alive, photo_files, save_photo

from dedupdb import workers
from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions, index
from dedupdb.pool import Pool
from dedupdb.store import open_store
from dedupdb.store.schema import Run

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find workers")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def early_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The processes of every pool started early (``Pool.start``) during the test."""
    started: list[int] = []
    real = Pool.start

    def recording(self: Pool[object, object]) -> None:
        real(self)
        started.extend(self.pids)

    monkeypatch.setattr(Pool, "start", recording)
    return started


def rows(db: Path) -> list[tuple[object, ...]]:
    """Every stored image's content columns, by path (not ids or times)."""
    with sqlite3.connect(db) as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(images)")]
        keep = [n for n in names if n not in ("id", "root_id", "indexed_at", "device", "inode")]
        return conn.execute(f"SELECT {', '.join(keep)} FROM images ORDER BY relpath").fetchall()


def test_work_is_expected_only_for_a_root_the_database_has_never_indexed(
    tmp_path: Path, photo_tree: Path
) -> None:
    db = tmp_path / "i.sqlite"
    assert workers.expects_work(str(db), str(photo_tree))  # no database yet
    open_store(db).close()
    assert workers.expects_work(str(db), str(photo_tree))  # a database without this root
    assert workers.expects_work(None, str(photo_tree))  # $DEDUPDB_DB (conftest), not created
    index(open_store(db), photo_tree, IndexOptions(workers=1))
    assert not workers.expects_work(str(db), str(photo_tree))  # a re-index
    assert not workers.expects_work(str(db), str(photo_tree / "2024" / ".."))  # the same root
    assert workers.expects_work(str(db), str(photo_tree / "2024"))  # a root of its own
    (tmp_path / "empty").mkdir()
    assert not workers.expects_work(str(tmp_path / "new.sqlite"), str(tmp_path / "empty"))
    assert not workers.expects_work(str(db), str(tmp_path / "no such folder"))
    assert not workers.expects_work("postgresql://host/photos", str(photo_tree))
    (tmp_path / "notes.sqlite").write_text("not a database")
    assert not workers.expects_work(str(tmp_path / "notes.sqlite"), str(photo_tree))


def test_the_command_starts_workers_early_for_a_new_root_only(
    tmp_path: Path, photo_tree: Path, early_pids: list[int]
) -> None:
    db = tmp_path / "cli.sqlite"
    first = run("index", str(photo_tree), "--db", str(db), "--workers", "2")
    assert first.exit_code == 0, first.output
    assert "new                6" in first.stdout
    assert len(early_pids) == 2
    assert not any(alive(pid) for pid in early_pids)
    early_pids.clear()
    save_photo(photo_tree / "added.jpg", 9)
    again = run("index", str(photo_tree), "--db", str(db), "--workers", "2")
    assert again.exit_code == 0, again.output
    assert "new                1" in again.stdout and "unchanged          6" in again.stdout
    assert early_pids == []  # a re-index starts its workers once it knows what to decode


def test_early_and_late_workers_store_the_same_rows(
    tmp_path: Path, photo_tree: Path, early_pids: list[int]
) -> None:
    (photo_tree / "broken.jpg").write_bytes(b"not a picture")
    save_photo(photo_tree / "tiny.png", 5, (40, 30))
    early, late = tmp_path / "early.sqlite", tmp_path / "late.sqlite"
    assert run("index", str(photo_tree), "--db", str(early), "--workers", "2").exit_code == 0
    assert len(early_pids) == 2
    store = open_store(late)
    try:
        summary = index(store, photo_tree, IndexOptions(workers=2))
    finally:
        store.close()
    assert (summary.new, summary.failed, summary.skipped) == (6, 1, 1)
    assert rows(early) == rows(late)
    for db in (early, late):
        with sqlite3.connect(db) as conn:
            failures = conn.execute("SELECT relpath, kind FROM failures ORDER BY relpath")
            assert failures.fetchall() == [(b"broken.jpg", "failed"), (b"tiny.png", "skipped")]


def _newer_database(db: Path) -> None:
    open_store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")


def _busy_database(db: Path) -> None:
    store = open_store(db)
    with store.transaction() as session:
        session.add(Run(host="gone-host", pid=7, status="running", started_at=datetime(2026, 1, 1)))
    store.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [(_newer_database, "newer dedupdb"), (_busy_database, "the database is busy")],
)
def test_workers_started_early_stop_when_the_start_fails(
    tmp_path: Path, photo_tree: Path, early_pids: list[int], make: object, message: str
) -> None:
    db = tmp_path / "cli.sqlite"
    make(db)  # type: ignore[operator]
    result = run("index", str(photo_tree), "--db", str(db), "--workers", "2")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert len(early_pids) == 2  # started before the database was opened ...
    assert not any(alive(pid) for pid in early_pids)  # ... and gone with the command


def test_an_empty_root_starts_no_worker(
    tmp_path: Path, photo_tree: Path, early_pids: list[int]
) -> None:
    db = tmp_path / "cli.sqlite"
    assert run("index", str(photo_tree), "--db", str(db), "--workers", "2").exit_code == 0
    early_pids.clear()
    for path in sorted(photo_tree.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    refused = run("index", str(photo_tree), "--db", str(db), "--workers", "2")
    assert refused.exit_code == 1 and "is empty, but 6 images" in refused.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("index", str(empty), "--db", str(tmp_path / "new.sqlite"), "--workers", "2")
    assert nothing.exit_code == 0 and "new                0" in nothing.stdout
    assert early_pids == []


def _processes_naming(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_the_console_command_leaves_no_worker_behind_when_refused(tmp_path: Path) -> None:
    """The real command (forked workers, their deaths with the parent): a database from a newer
    dedupdb is refused in one line and no process of the command is left."""
    root, db = tmp_path / "photos-refused", tmp_path / "i.sqlite"
    photo_files(root, 4, size=(320, 240))
    _newer_database(db)
    done = subprocess.run(
        [sys.executable, "-m", "dedupdb", "index", str(root), "--db", str(db), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "newer dedupdb" in done.stderr
    assert _processes_naming(str(root)) == []


def test_default_workers_are_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert workers.default_workers() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert workers.default_workers() == 3


def test_the_indexing_process_loads_no_decoder_when_workers_start_early(
    tmp_path: Path, photo_tree: Path
) -> None:
    """Forked before the command loads anything heavy, the workers load numpy and Pillow; the
    indexing process (the writer) does without them. A re-index warms up here, once, before
    forking its workers late, as before."""
    from test_cli_polish import loaded_by

    db = str(tmp_path / "probe.sqlite")
    first = loaded_by("index", str(photo_tree), "--db", db, "--quiet", "--workers", "2")
    assert "sqlalchemy" in first and not first & {"numpy", "PIL", "scipy"}
    save_photo(photo_tree / "added.jpg", 9)
    again = loaded_by("index", str(photo_tree), "--db", db, "--quiet", "--workers", "2")
    assert {"numpy", "PIL"} <= again


def test_a_worker_forked_while_start_up_paused_the_collector_resumes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(gc.isenabled()))
    gc.disable()  # as ``cli.main`` does while the command loads its modules
    try:
        workers._prepare()
        assert gc.isenabled() and frozen == [False]
        workers._prepare()  # forked from a process that had resumed it: left alone
        assert gc.isenabled() and frozen == [False]
    finally:
        gc.enable()


LIMIT_PROBE = """
import resource, sys
from dedupdb.fingerprint import files
before = int(sys.argv[1])
if before:
    lower = files._address_space() + before
    resource.setrlimit(resource.RLIMIT_AS, (lower, resource.RLIM_INFINITY))
size = files._address_space()
was = resource.getrlimit(resource.RLIMIT_AS)[0]
print(files.limit_memory(300), resource.getrlimit(resource.RLIMIT_AS)[0] - size, was - size,
      files.memory_limit())
"""


def limit_probe(before: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LIMIT_PROBE, str(before)], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_a_worker_limits_its_address_space_to_its_size_plus_the_budget() -> None:
    limited, room, _, named = limit_probe(0)
    assert limited == "True" and named == "300"
    assert abs(int(room) - 300 * 1024 * 1024) < 16 * 1024 * 1024  # what importing the probe took


def test_a_worker_never_raises_a_lower_limit_it_was_given() -> None:
    limited, room, was, named = limit_probe(100 * 1024 * 1024)
    assert (limited, named) == ("False", "None")
    assert room == was  # unchanged: 100 MiB, below the 300 asked for
