"""Stop a cross-filesystem apply or undo between any two of its filesystem calls, then finish
or reverse it: the photo tree comes back byte for byte and no partial copy is left anywhere.

The stop is real: a forked child runs apply (or undo) and ends itself with ``os._exit`` just
before its Nth filesystem call: no ``finally`` and no ``except`` runs, as after kill -9. N goes
from 1 until a child finishes without reaching it, so every gap between two calls is tried.
The other filesystem is either real (the quarantine on a tmpfs mounted for the test, which
needs root) or simulated on one filesystem: ``link`` and ``rename`` between the photo tree and
the quarantine fail with EXDEV as the kernel makes them fail, so the code takes the same copy,
fsync, verify and rename path.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_actions import build_report, fake_trash, files_under, library, snapshot

from dedupdb import index
from dedupdb.actions import SYMLINK, TRASH, ActionError, apply, plan_actions, resume, undo
from dedupdb.indexing import IndexOptions
from dedupdb.store import Store, open_store

pytestmark = pytest.mark.slow
__all__ = ["fake_trash"]  # a fixture of test_actions, used here

# Every call that changes the filesystem or makes a change durable (and ``open``, which
# creates): a stop before any of them is a state a crash can leave behind.
FS_CALLS = (
    "open", "link", "symlink", "unlink", "rename", "replace", "fsync", "mkdir", "rmdir",
    "utime", "chmod", "setxattr", "removexattr", "truncate",
)  # fmt: skip
STOPPED = 99  # the child's exit code when it stopped itself


@dataclass
class Setup:
    """A small indexed library (a photo and its copy: one cross-device move) that each trial
    starts again from, and where the quarantine is."""

    tmp: Path
    root: Path
    db: Path
    quarantine: Path
    simulated: bool  # the quarantine's filesystem is simulated by EXDEV (else a real tmpfs)
    # Opened once: its engine's compiled statements are inherited by every forked child (each
    # would compile them again, a third of a trial's time). Its connections never are: they
    # are closed before each fork and before the file is replaced.
    store: Store

    def restore(self) -> None:
        """The library, its database and an empty quarantine, as before the first trial."""
        self.store.engine.dispose()
        shutil.rmtree(self.root)
        shutil.copytree(self.tmp / "template" / "photos", self.root)  # bytes, mode, mtime_ns
        shutil.copyfile(self.tmp / "template" / "db.sqlite", self.db)
        for name in ("-wal", "-shm"):
            Path(f"{self.db}{name}").unlink(missing_ok=True)
        for entry in self.quarantine.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


@pytest.fixture(params=["simulated", "tmpfs"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    """Either kind of other filesystem; ``"either"`` (indirect): a tmpfs where one can be
    mounted, else simulated (for the variants that need not run twice)."""
    quarantine = tmp_path / "q"
    quarantine.mkdir()
    root = library(tmp_path, families=1, copies=1)
    store = open_store(tmp_path / "db.sqlite")
    index(store, root, IndexOptions(workers=1))
    store.close()  # the last connection: the WAL is checkpointed into the file
    (tmp_path / "template").mkdir()
    shutil.copytree(root, tmp_path / "template" / "photos")
    shutil.copyfile(tmp_path / "db.sqlite", tmp_path / "template" / "db.sqlite")
    simulated = request.param == "simulated"
    if not simulated:
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "dedupdb-test", str(quarantine)],
            capture_output=True,
            text=True,
        )
        if mount.returncode != 0 and request.param == "either":
            simulated = True
        elif mount.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {mount.stderr.strip()}")
    store = open_store(tmp_path / "db.sqlite")
    try:
        if not simulated:
            assert os.stat(quarantine).st_dev != os.stat(root).st_dev
        warm = plan_actions(store, build_report(store), "move", quarantine=quarantine)
        apply(store, warm)
        undo(store)  # compiles most of what the children run
        yield Setup(tmp_path, root, tmp_path / "db.sqlite", quarantine, simulated, store)
    finally:
        store.close()
        if not simulated:
            subprocess.run(["umount", "-l", str(quarantine)], check=True)


def install_stop(stop_at: int | None, quarantine: bytes | None) -> None:
    """In the child: end the process just before its ``stop_at``-th filesystem call; with
    ``quarantine``, make link and rename between it and elsewhere fail with EXDEV."""
    count = 0

    def crosses(args: tuple[Any, ...]) -> bool:
        if quarantine is None or len(args) < 2:
            return False
        a, b = (os.fsencode(p).startswith(quarantine) for p in args[:2])
        return a != b

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            if count == stop_at:
                os._exit(STOPPED)
            if name in ("link", "rename", "replace") and crosses(args):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            if name == "fsync":  # counted, not done: a stopped process's writes stay in the
                return None  # page cache (fsync guards against power cuts); saves disk time
            return real(*args, **kwargs)

        return call

    for name in FS_CALLS:
        if hasattr(os, name):
            setattr(os, name, wrap(name, getattr(os, name)))


def in_child(
    setup: Setup, work: Callable[[Store], Any], stop_at: int | None = None
) -> tuple[int, Any]:
    """Run ``work`` on the database in a forked child, stopped before its ``stop_at``-th
    filesystem call; (exit code, what ``work`` returned or the error's text)."""
    setup.store.engine.dispose()  # the child opens its own connections
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code, answer = 1, None
        try:
            os.close(read)
            install_stop(stop_at, os.fsencode(setup.quarantine) if setup.simulated else None)
            answer = work(setup.store)
            code = 0
        except ActionError as err:
            code, answer = 0, {"error": str(err)}
        except BaseException:
            answer = traceback.format_exc()
        finally:
            os.write(write, json.dumps(answer).encode())
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, STOPPED), output.decode()
    return code, json.loads(output) if output else None


def plan_for(setup: Setup, action: str) -> Any:
    quarantine = None if action == TRASH else setup.quarantine
    return plan_actions(setup.store, build_report(setup.store), action, quarantine=quarantine)


def undo_all(store: Store) -> dict[str, Any]:
    result = undo(store)
    return {"skipped": [s.reason for s in result.skipped], "restored": len(result.restored)}


def assert_restored(setup: Setup, before: dict[str, Any], stop_at: int) -> None:
    """The tree as it was, the quarantine empty, no partial copy on either side."""
    assert snapshot(setup.root) == before, f"stopped before call {stop_at}"
    assert files_under(setup.quarantine) == [], f"stopped before call {stop_at}"
    assert not list(setup.tmp.rglob("*.dedupdb-partial")), f"stopped before call {stop_at}"


def each_stop(trial: Callable[[int], int]) -> int:
    """Run ``trial(n)`` for n = 1, 2, ... until the step it stops stopped nothing; how many."""
    for stop_at in range(1, 500):
        if trial(stop_at) == 0:
            return stop_at
    raise AssertionError("never finished")  # pragma: no cover


@pytest.mark.parametrize("then", ["resume", "undo"])
def test_apply_stopped_before_any_call_then_resumed_or_undone(setup: Setup, then: str) -> None:
    apply_stopped_then_resumed_or_undone(setup, "move", then)


@pytest.mark.parametrize("then", ["resume", "undo"])
@pytest.mark.parametrize("setup", ["either"], indirect=True)
def test_symlinking_stopped_before_any_call_then_resumed_or_undone(setup: Setup, then: str) -> None:
    apply_stopped_then_resumed_or_undone(setup, SYMLINK, then)


def apply_stopped_then_resumed_or_undone(setup: Setup, action: str, then: str) -> None:
    before = snapshot(setup.root)

    def trial(stop_at: int) -> int:
        setup.restore()
        plan = plan_for(setup, action)
        code, _ = in_child(setup, lambda store: apply(store, plan).run_id, stop_at)
        if then == "resume":
            _, finished = in_child(setup, lambda store: len(resume(store).done))
            # Stopped before the journal was written: there is nothing to resume.
            nothing = {"error": "no interrupted apply run to resume (see `dedupdb history`)"}
            assert finished in (1, nothing), (stop_at, finished)
        _, undone = in_child(setup, undo_all)
        assert "error" in undone or not undone["skipped"], (stop_at, undone)
        assert_restored(setup, before, stop_at)
        return code

    # A cross-device move takes more than ten filesystem calls.
    assert each_stop(trial) > 10


def test_undo_stopped_before_any_call_then_undone_again(setup: Setup) -> None:
    undo_stopped_then_undone_again(setup, "move")


@pytest.mark.parametrize("setup", ["either"], indirect=True)
def test_undo_of_symlinks_stopped_before_any_call_then_undone_again(setup: Setup) -> None:
    undo_stopped_then_undone_again(setup, SYMLINK)


def undo_stopped_then_undone_again(setup: Setup, action: str) -> None:
    before = snapshot(setup.root)

    def trial(stop_at: int) -> int:
        setup.restore()
        plan = plan_for(setup, action)
        assert in_child(setup, lambda store: len(apply(store, plan).done)) == (0, 1)
        code, _ = in_child(setup, undo_all, stop_at)
        _, again = in_child(setup, undo_all)
        if code == 0:  # the first undo finished: nothing is left to undo
            assert "error" in again, again
        else:
            assert again["skipped"] == [], (stop_at, again)
        assert_restored(setup, before, stop_at)
        return code

    assert each_stop(trial) > 10


@pytest.mark.parametrize("setup", ["either"], indirect=True)
def test_resume_stopped_before_any_call_then_resumed_again(setup: Setup) -> None:
    """An apply stopped with its partial copy written, then its resume stopped too."""
    before = snapshot(setup.root)

    def apply_until_a_partial_copy(stop_at: int) -> bool:
        setup.restore()
        plan = plan_for(setup, "move")
        assert in_child(setup, lambda store: apply(store, plan).run_id, stop_at)[0] == STOPPED
        return any(setup.quarantine.rglob("*.dedupdb-partial"))

    partial_at = next(n for n in range(1, 100) if apply_until_a_partial_copy(n))

    def trial(stop_at: int) -> int:
        assert apply_until_a_partial_copy(partial_at)
        code, _ = in_child(setup, lambda store: len(resume(store).done), stop_at)
        _, again = in_child(setup, lambda store: len(resume(store).done))
        nothing = {"error": "no interrupted apply run to resume (see `dedupdb history`)"}
        assert again == (1 if code == STOPPED else nothing), (stop_at, again)
        assert not list(setup.tmp.rglob("*.dedupdb-partial")), stop_at
        assert files_under(setup.root) == ["originals/p0.jpg"], stop_at
        _, undone = in_child(setup, undo_all)
        assert undone == {"skipped": [], "restored": 1}, (stop_at, undone)
        assert_restored(setup, before, stop_at)
        return code

    assert each_stop(trial) > 5


@pytest.mark.parametrize("setup", ["simulated"], indirect=True)
def test_undo_from_the_trash_stopped_before_any_call_then_undone_again(
    setup: Setup, fake_trash: Path
) -> None:
    """The freedesktop trash is on the photos' filesystem: the way back is link, unlink."""
    before = snapshot(setup.root)

    def trial(stop_at: int) -> int:
        shutil.rmtree(fake_trash, ignore_errors=True)
        setup.restore()
        plan = plan_for(setup, TRASH)
        assert in_child(setup, lambda store: len(apply(store, plan).done)) == (0, 1)
        code, _ = in_child(setup, undo_all, stop_at)
        _, again = in_child(setup, undo_all)
        if code == 0:
            assert "error" in again, again
        else:
            assert again["skipped"] == [], (stop_at, again)
        assert_restored(setup, before, stop_at)
        assert files_under(fake_trash) == [], stop_at  # nor its .trashinfo
        return code

    assert each_stop(trial) > 3


@pytest.mark.parametrize("then", ["resume", "undo"])
@pytest.mark.parametrize("setup", ["simulated"], indirect=True)
def test_apply_to_the_trash_stopped_before_any_call_then_resumed_or_undone(
    setup: Setup, fake_trash: Path, then: str
) -> None:
    before = snapshot(setup.root)

    def trial(stop_at: int) -> int:
        shutil.rmtree(fake_trash, ignore_errors=True)
        setup.restore()
        plan = plan_for(setup, TRASH)
        code, _ = in_child(setup, lambda store: apply(store, plan).run_id, stop_at)
        if then == "resume":
            in_child(setup, lambda store: len(resume(store).done))
        _, undone = in_child(setup, undo_all)
        assert "error" in undone or not undone["skipped"], (stop_at, undone)
        assert_restored(setup, before, stop_at)
        assert files_under(fake_trash) == [], stop_at
        return code

    assert each_stop(trial) > 1
