"""A database on read-only media: the reading commands open it read-only and say so, the
writing commands refuse with one clear line.

Read-only for real, also for root (the tests run as root, whom permission bits do not stop): a
tmpfs remounted read-only, where SQLite cannot create the WAL's ``-shm`` file (the hardest case:
the last writer removed it), and an immutable file (``chattr +i``) in a writable folder.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_actions import library

from dedupdb.cli import cli

pytestmark = pytest.mark.slow


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def prepare(tmp_path: Path, db: Path) -> Path:
    """Index a library into ``db``, apply and undo a run, mark a pair not duplicates."""
    root = library(tmp_path, families=2, copies=1)
    assert run("index", str(root), "--db", str(db), "--workers", "1", "-q").exit_code == 0
    report = tmp_path / "report.json"
    assert run("report", "--json", str(report), "-q", "--db", str(db)).exit_code == 0
    moved = run("apply", str(report), "--yes", "--move-to", str(tmp_path / "q"), "--db", str(db))
    assert moved.exit_code == 0, moved.output
    assert run("undo", "--db", str(db)).exit_code == 0
    pair = [str(root / "originals" / "p0.jpg"), str(root / "originals" / "p1.jpg")]
    assert run("not-duplicate", *pair, "--db", str(db)).exit_code == 0
    assert not Path(f"{db}-shm").exists()  # closed cleanly: SQLite removed its WAL files
    return root


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def on_read_only_media(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the database on a read-only filesystem, the indexed folder)."""
    media = tmp_path / "media"
    media.mkdir()
    made = mount("-t", "tmpfs", "-o", "size=16m", "dedupdb-test", str(media))
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        db = media / "dedupdb.sqlite"
        root = prepare(tmp_path, db)
        remounted = mount("-o", "remount,ro", str(media))
        assert remounted.returncode == 0, remounted.stderr
        with pytest.raises(OSError):
            (media / "probe").touch()  # read-only for root too
        yield db, root
    finally:
        subprocess.run(["umount", "-l", str(media)], check=True)


@pytest.fixture
def immutable_file(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "db" / "dedupdb.sqlite"
    db.parent.mkdir()
    prepare(tmp_path, db)
    made = subprocess.run(["chattr", "+i", str(db)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a file immutable here (chattr, root): {made.stderr.strip()}")
    try:
        with pytest.raises(OSError):
            db.open("ab").close()  # immutable for root too
        yield db
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


READING = [
    ("status",),
    ("status", "--errors", "--json"),
    ("report",),
    ("report", "--json", "-"),
    ("history",),
    ("history", "--json"),
    ("not-duplicate", "--list"),
]


def test_reading_commands_read_a_database_on_read_only_media(
    on_read_only_media: tuple[Path, Path], tmp_path: Path
) -> None:
    db, _ = on_read_only_media
    outputs = {}
    for args in READING:
        result = run(*args, "--db", str(db))
        assert result.exit_code == 0, (args, result.output)
        assert "on a read-only filesystem: opened read-only" in result.stderr, args
        outputs[args] = result.stdout
    assert json.loads(outputs[("status", "--errors", "--json")])["images"] == 4
    assert json.loads(outputs[("history", "--json")])[0]["status"] == "undone"
    clusters = json.loads(outputs[("report", "--json", "-")])["clusters"]
    assert len(clusters) == 2
    assert "(the database is read-only" in outputs[("report",)]
    assert "p0.jpg  <->  " in outputs[("not-duplicate", "--list")]
    backup = run("backup", str(tmp_path / "copy.sqlite"), "--db", str(db))
    assert backup.exit_code == 0, backup.output
    with sqlite3.connect(tmp_path / "copy.sqlite") as copy:
        assert copy.execute("SELECT count(*) FROM images").fetchone() == (4,)


def test_writing_commands_refuse_a_database_on_read_only_media(
    on_read_only_media: tuple[Path, Path], tmp_path: Path
) -> None:
    db, root = on_read_only_media
    before = db.read_bytes()
    for args in [
        ("index", str(root)),
        ("prune",),
        ("apply", "--yes"),
        ("undo",),
        ("not-duplicate", "--cluster", "1"),
    ]:
        result = run(*args, "--db", str(db))
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith(
            f"Error: the database {db} cannot be written: it is on a read-only filesystem"
        ), (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert db.read_bytes() == before


def test_an_older_database_on_read_only_media_says_it_cannot_be_upgraded(
    tmp_path: Path,
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    if mount("-t", "tmpfs", "dedupdb-test", str(media)).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        db = media / "dedupdb.sqlite"
        prepare(tmp_path, db)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0007'")
        conn.close()
        assert mount("-o", "remount,ro", str(media)).returncode == 0
        result = run("status", "--db", str(db))
        assert result.exit_code == 1
        assert "(schema 0007) is not at this dedupdb's schema" in result.stderr
        assert "cannot be upgraded where it is: it is on a read-only filesystem" in result.stderr
    finally:
        subprocess.run(["umount", "-l", str(media)], check=True)


def test_an_immutable_database_file_is_read_read_only_and_not_written(
    immutable_file: Path, tmp_path: Path
) -> None:
    db = immutable_file
    status = run("status", "--json", "--db", str(db))
    assert status.exit_code == 0, status.output
    assert "not writable by this user" in status.stderr and "opened read-only." in status.stderr
    assert json.loads(status.stdout)["images"] == 4
    refused = run("prune", "--db", str(db))
    assert refused.exit_code == 1 and "cannot be written" in refused.stderr
