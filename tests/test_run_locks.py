"""`dedupdb index` and `dedupdb apply`/`undo` on one database exclude each other, for real: the
other command runs in its own process, held in the middle of its work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import photo_files
from sqlalchemy import select

from dedupdb.actions import ActionError, history, undo
from dedupdb.cli import cli
from dedupdb.errors import DatabaseBusyError
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import open_store
from dedupdb.store.schema import ApplyRun

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.isdir("/proc"), reason="run locks check pids in /proc"),
]

# Runs one dedupdb command in this process, held at ``hold`` (a function of ``module``) until
# killed; a file says when it got there. Its command line names dedupdb, as the real one does.
HELD = """
import importlib, pathlib, sys, time
module = importlib.import_module({module!r})
def held(*args, **kwargs):
    pathlib.Path({ready!r}).touch()
    time.sleep(120)
setattr(module, {hold!r}, held)
from dedupdb.cli import cli
cli({args!r})
"""


Held = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Held]:
    started: list[subprocess.Popen[bytes]] = []

    def start(module: str, hold: str, *args: str) -> subprocess.Popen[bytes]:
        ready = tmp_path / f"ready-{len(started)}"
        script = HELD.format(module=module, hold=hold, ready=str(ready), args=list(args))
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        started.append(proc)
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the held command did not get there in a minute"
            time.sleep(0.02)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def duplicates(tmp_path: Path) -> Path:
    """Four photos, each with an exact copy, indexed."""
    root = tmp_path / "photos"
    for path in photo_files(root / "a", 4, (160, 120)):
        (root / "b").mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, root / "b" / path.name)
    return root


def test_index_refuses_while_an_apply_runs(tmp_path: Path, held: Held) -> None:
    root, db = duplicates(tmp_path), tmp_path / "db.sqlite"
    store = open_store(db)
    try:
        index(store, root, IndexOptions(workers=1))
        assert CliRunner().invoke(cli, ["report", "-q", "--db", str(db)]).exit_code == 0
        args = ["apply", "--db", str(db), "--move-to", str(tmp_path / "q"), "--yes"]
        apply_proc = held("dedupdb.fileops", "move", *args)  # held before its first move

        with pytest.raises(
            DatabaseBusyError, match=rf"an apply is running \(run 1, pid {apply_proc.pid} "
        ):
            index(store, root, IndexOptions(workers=1))
        result = CliRunner().invoke(cli, ["index", str(root), "--db", str(db)])
        assert result.exit_code == 1
        assert f"an apply is running (run 1, pid {apply_proc.pid}" in result.output
        assert "wait for it to finish" in result.output and "Traceback" not in result.output
        with store.session() as session:  # the refused runs left no row behind
            assert [r.status for r in session.execute(select(ApplyRun)).scalars()] == ["running"]

        apply_proc.kill()
        apply_proc.wait()
        summary = index(store, root, IndexOptions(workers=1))  # a dead apply holds nothing
        assert summary.unchanged == 8
    finally:
        store.close()


def test_apply_and_undo_refuse_while_an_index_runs(tmp_path: Path, held: Held) -> None:
    root, db = duplicates(tmp_path), tmp_path / "db.sqlite"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(root), "--db", str(db), "--quiet"]).exit_code == 0
    assert runner.invoke(cli, ["report", "-q", "--db", str(db)]).exit_code == 0
    moved = runner.invoke(
        cli, ["apply", "--db", str(db), "--move-to", str(tmp_path / "q"), "--yes"]
    )
    assert moved.exit_code == 0, moved.output
    (root / "c").mkdir()  # something new for the next index to plan
    index_proc = held("dedupdb.indexing", "plan", "index", str(root), "--db", str(db))

    store = open_store(db)
    try:
        message = rf"an index is running on this database \(pid {index_proc.pid} "
        result = runner.invoke(cli, ["apply", "--db", str(db), "--yes"])
        assert result.exit_code == 1
        assert f"an index is running on this database (pid {index_proc.pid}" in result.output
        assert "Traceback" not in result.output
        with pytest.raises(ActionError, match=message):
            undo(store)
        runs = history(store)
        assert [(r.id, r.status) for r in runs] == [
            (1, "done")
        ]  # the refused undo left it as it was

        index_proc.kill()
        index_proc.wait()
        undone = undo(store)  # a dead index holds nothing
        assert len(undone.restored) == 4
    finally:
        store.close()
