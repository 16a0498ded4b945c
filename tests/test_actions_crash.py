"""kill -9 in the middle of `dedupdb apply`, for real (a subprocess), then resume or undo.

A small driver runs the real CLI in a subprocess and SIGKILLs itself at a chosen step of the
Nth file (between the new name and removing the old one, with a copy half done, after the
filesystem step but before the journal says so, before a link is made); another test kills
the process from outside at an arbitrary moment. Afterwards no file is lost or half-moved,
`dedupdb apply --resume` finishes the run, and `dedupdb undo` gives back the exact tree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from test_actions import build_report, files_under, library, snapshot

from dedupdb import index
from dedupdb.actions import resume, undo
from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions
from dedupdb.store import Store
from dedupdb.store.schema import Action

pytestmark = pytest.mark.slow

DRIVER = r"""
import errno, os, signal, sys, time
from dedupdb import actions, cli, fileops

mode, nth = sys.argv[1], int(sys.argv[2])
seen = {"n": 0}

def hit():
    seen["n"] += 1
    if seen["n"] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

if mode == "after-link":  # the file has its quarantine name too; the old one not yet removed
    real_unlink = os.unlink
    def unlink(path, *args, **kwargs):
        if b"/photos/" in os.fsencode(path):
            hit()
        real_unlink(path, *args, **kwargs)
    os.unlink = unlink
elif mode == "in-copy":  # across filesystems: the partial copy is written, not yet in place
    def no_link(src, dst, **kwargs):
        raise OSError(errno.EXDEV, "cross-device")
    os.link = no_link
    real_hash = fileops.hash_file
    def hash_file(path):
        if path.endswith(fileops.PARTIAL_SUFFIX):
            hit()
        return real_hash(path)
    fileops.hash_file = hash_file
elif mode == "before-journal":  # moved, but the journal still says planned
    real_record = actions._record
    def record(store, entry_id, state, **kwargs):
        if state == actions.DONE:
            hit()
        real_record(store, entry_id, state, **kwargs)
    actions._record = record
elif mode == "before-symlink":  # moved aside into the quarantine, the link not yet made
    real_symlink = os.symlink
    def symlink(*args, **kwargs):
        hit()
        real_symlink(*args, **kwargs)
    os.symlink = symlink
elif mode == "slow":  # for the kill from outside
    real_move = fileops.move
    def move(*args):
        time.sleep(0.05)
        real_move(*args)
    fileops.move = move
sys.argv = ["dedupdb", *sys.argv[3:]]
cli.main()
"""


def start(
    tmp_path: Path, store: Store, mode: str, action: str = "--move-to"
) -> subprocess.Popen[bytes]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    report = tmp_path / "report.json"
    report.write_text(json.dumps(build_report(store)), encoding="utf-8")
    args = [sys.executable, str(driver), mode, "3", "apply", str(report), "--yes", "-q"]
    args += ["--db", store.url, "--move-to", str(tmp_path / "q")]
    if action == "undo":
        args = [sys.executable, str(driver), mode, "3", "undo", "--db", store.url]
    elif action != "--move-to":
        args.append(action)
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def journal(store: Store) -> dict[str, int]:
    with store.session() as session:
        return dict(
            session.execute(select(Action.state, func.count()).group_by(Action.state)).all()
        )  # type: ignore[arg-type]


def assert_each_file_once(root: Path, quarantine: Path, before: dict[str, object]) -> None:
    """Every duplicate is in exactly one place, whole; keepers untouched; no partial left."""
    for rel, entry in before.items():
        if entry == "dir":
            continue
        data = entry[1]  # type: ignore[index]
        here = root / rel
        there = quarantine / "photos" / rel
        places = [p for p in (here, there) if p.exists() and not p.is_symlink()]
        if rel.startswith("originals/"):
            assert places == [here] and here.read_bytes() == data
            continue
        assert len(places) == 1, (rel, places)
        assert places[0].read_bytes() == data


# Each kill costs a subprocess start (seconds on a shared machine): each mode is followed by
# one of the two ways out, and both ways are covered.
@pytest.mark.parametrize(
    ("mode", "then"),
    [("after-link", "resume"), ("in-copy", "undo"), ("before-journal", "undo")],
)
def test_kill_9_mid_apply_then_resume_or_undo(
    tmp_path: Path, store: Store, mode: str, then: str
) -> None:
    root = library(tmp_path, families=4, copies=2)
    index(store, root, IndexOptions(workers=1))
    before = snapshot(root)
    proc = start(tmp_path, store, mode)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    states = journal(store)
    assert states.get("done") == 2 and states.get("planned") == 6
    quarantine = tmp_path / "q"
    if then == "resume":
        finished = CliRunner().invoke(cli, ["apply", "--resume", "--json", "--db", store.url])
        assert finished.exit_code == 0, finished.output
        result = json.loads(finished.output)
        assert len(result["done"]) == 8 and not result["skipped"]
        assert files_under(root) == [f"originals/p{f}.jpg" for f in range(4)]
        assert not list(quarantine.rglob("*.dedupdb-partial"))
        assert_each_file_once(root, quarantine, before)
        undo(store)
    else:
        result_undo = undo(store)
        assert not result_undo.skipped
    assert snapshot(root) == before
    assert files_under(quarantine) == []


def test_kill_9_between_moving_aside_and_linking(tmp_path: Path, store: Store) -> None:
    root = library(tmp_path, families=4, copies=2)
    index(store, root, IndexOptions(workers=1))
    before = snapshot(root)
    proc = start(tmp_path, store, "before-symlink", "--symlink")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    result = resume(store)
    assert len(result.done) == 8
    assert all((root / f"copies{c}" / f"p{f}.jpg").is_symlink() for c in range(2) for f in range(4))
    undo(store)
    assert snapshot(root) == before


def test_kill_9_from_outside_at_any_moment(tmp_path: Path, store: Store) -> None:
    root = library(tmp_path, families=4, copies=2)
    index(store, root, IndexOptions(workers=1))
    before = snapshot(root)
    proc = start(tmp_path, store, "slow")
    deadline = time.monotonic() + 60
    while journal(store).get("done", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    states = journal(store)
    assert 3 <= states.get("done", 0) < 8
    assert_each_file_once(root, tmp_path / "q", before)
    result = resume(store)
    assert len(result.done) == 8
    undo(store)
    assert snapshot(root) == before


def test_kill_9_mid_undo_then_undo_again(tmp_path: Path, store: Store) -> None:
    root = library(tmp_path, families=4, copies=2)
    index(store, root, IndexOptions(workers=1))
    before = snapshot(root)
    from dedupdb.actions import apply, plan_actions

    apply(store, plan_actions(store, build_report(store), quarantine=tmp_path / "q"))
    proc = start(tmp_path, store, "after-link", "undo")  # killed with a file under two names
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    assert journal(store).get("undone") == 2
    result = undo(store)
    assert len(result.restored) == 6 and not result.skipped
    assert snapshot(root) == before
    assert files_under(tmp_path / "q") == []
