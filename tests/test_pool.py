"""The worker pool with real processes that really crash: segfaults, SIGKILL, os._exit, hangs
and exceptions, each on one task; every other task is answered once and no process is left."""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import alive

from dedupdb.pool import Lost, Pool

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(),
    reason="the crash functions are defined in the test module: workers must be forked",
)

FORK = multiprocessing.get_context("fork") if sys.platform != "win32" else None


def misbehave(task: str) -> str:
    """Doubles the task's text, unless the task says how to die."""
    if task == "segfault":
        faulthandler.disable()  # pytest's handler would print a traceback first
        ctypes.string_at(0)  # a real invalid read, as a broken C decoder makes
    elif task == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer sends
    elif task == "exit":
        os._exit(3)
    elif task == "hang":
        time.sleep(600)
    elif task == "raise":
        raise ValueError("a bug")
    return task * 2


def run(tasks: list[str], workers: int = 2, timeout: float | None = None) -> dict[str, object]:
    """Every answer by task (each task must be answered exactly once)."""
    assert FORK is not None
    seen: list[int] = []
    with Pool(misbehave, workers, FORK, timeout=timeout) as pool:
        for task in tasks:
            pool.submit(task)
        answers = []
        for answer in pool.results():
            answers.append(answer)
            seen.extend(pool.pids)
    counts = Counter(task for task, _ in answers)
    assert counts == Counter(tasks), "a task was lost or answered twice"
    assert not [pid for pid in set(seen) if alive(pid)], "a worker outlived the pool"
    assert not multiprocessing.active_children()
    return dict(answers)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to check for orphans")
@pytest.mark.parametrize(
    ("culprit", "lost"),
    [
        ("segfault", Lost(signal=signal.SIGSEGV)),
        ("sigkill", Lost(signal=signal.SIGKILL)),
        ("exit", Lost(exitcode=3)),
    ],
)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_dies_costs_only_its_task(culprit: str, lost: Lost, workers: int) -> None:
    tasks = [f"t{i}" for i in range(12)]
    tasks.insert(5, culprit)
    answers = run(tasks, workers)
    assert answers.pop(culprit) == lost
    assert answers == {t: t * 2 for t in tasks if t != culprit}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to check for orphans")
def test_several_crashes_in_a_row_and_at_the_end() -> None:
    tasks = ["segfault", "sigkill", "a", "exit", "b", "c", "raise", "sigkill"]
    answers = run(tasks, 2)
    assert answers["segfault"] == Lost(signal=signal.SIGSEGV)
    assert answers["sigkill"] == Lost(signal=signal.SIGKILL)
    assert answers["exit"] == Lost(exitcode=3)
    error = answers["raise"]
    assert isinstance(error, Lost) and error.error and "ValueError: a bug" in error.error
    assert [answers[t] for t in "abc"] == ["aa", "bb", "cc"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to check for orphans")
def test_a_task_past_the_timeout_is_killed_and_reported() -> None:
    started = time.monotonic()
    answers = run(["a", "hang", "b", "c", "d"], 2, timeout=0.5)
    assert time.monotonic() - started < 30  # not the 600 s the task wanted
    assert answers["hang"] == Lost(timeout=0.5)
    assert answers["hang"].reason == "took longer than 0.5 s"  # type: ignore[union-attr]
    assert {t: answers[t] for t in "abcd"} == {t: t * 2 for t in "abcd"}


def test_tasks_submitted_while_iterating_are_run() -> None:
    assert FORK is not None
    with Pool(misbehave, 2, FORK) as pool:
        pool.submit("a")
        answers = []
        for task, answer in pool.results():
            answers.append(answer)
            if task == "a":
                pool.submit("segfault")
            if task == "segfault":
                pool.submit("b")
    assert answers == ["aa", Lost(signal=signal.SIGSEGV), "bb"]


def test_lost_reasons_are_readable() -> None:
    assert Lost(signal=11).reason == "signal 11 (SIGSEGV)"
    assert Lost(signal=9).reason == "signal 9 (SIGKILL)"
    assert Lost(exitcode=3).reason == "exited with status 3"
    assert Lost(timeout=120).reason == "took longer than 120 s"


ORPHANS = """
import multiprocessing, sys, time
sys.path.insert(0, {tests!r})
from test_pool import misbehave
from dedupdb.pool import Pool
pool = Pool(misbehave, 2, multiprocessing.get_context("fork"))
pool.submit("hang")
pool.submit("a")
next(pool.results())  # "a" is answered: one worker waits idle, the other hangs in its task
print(" ".join(map(str, pool.pids)), flush=True)
time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_workers_die_with_a_killed_parent_even_mid_task(tmp_path: Path) -> None:
    """One worker hangs in a task that never ends, the other waits idle: when the parent is
    killed (SIGKILL: no clean-up runs), both must go at once."""
    script = ORPHANS.format(tests=str(Path(__file__).parent))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        workers = {int(pid) for pid in proc.stdout.readline().split()}
        assert len(workers) == 2 and all(alive(pid) for pid in workers)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers outlived their killed parent"


def test_a_worker_that_cannot_start_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from dedupdb.errors import DedupdbError

    assert FORK is not None
    pool: Pool[str, str] = Pool(misbehave, 2, FORK)

    def no_fork(*args: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(pool, "_start", no_fork)
    pool.submit("a")
    with pytest.raises(DedupdbError, match="cannot start a worker process: Resource temp"):
        list(pool.results())
    pool.close()


def test_the_run_goes_on_with_the_workers_that_started(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FORK is not None
    with Pool(misbehave, 2, FORK) as pool:
        real = pool._start

        def once() -> object:
            if pool.started_workers:
                raise BlockingIOError(11, "Resource temporarily unavailable")
            return real()

        monkeypatch.setattr(pool, "_start", once)
        for task in "abcd":
            pool.submit(task)
        answers = dict(pool.results())
        assert pool.started_workers == 1
    assert answers == {t: t * 2 for t in "abcd"}


def _prepare_slowly(folder: str) -> None:
    """An initializer that says when it starts and when, three seconds later, it is done."""
    Path(folder, f"started-{os.getpid()}").touch()
    time.sleep(3)
    Path(folder, f"prepared-{os.getpid()}").touch()


def test_started_workers_prepare_before_any_task(tmp_path: Path) -> None:
    assert FORK is not None
    with Pool(misbehave, 2, FORK, initializer=_prepare_slowly, initargs=(str(tmp_path),)) as pool:
        pool.start()
        pids = set(pool.pids)
        assert len(pids) == 2
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("prepared-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {int(p.name.split("-")[1]) for p in tmp_path.glob("prepared-*")} == pids
        for task in "abc":
            pool.submit(task)
        assert dict(pool.results()) == {t: t * 2 for t in "abc"}
        assert set(pool.pids) == pids  # no other worker was started for the tasks
    assert not any(alive(pid) for pid in pids)


def test_leaving_on_an_error_kills_workers_still_preparing(tmp_path: Path) -> None:
    """A start-up that fails (a refused database, Ctrl+C) does not wait for its workers."""
    assert FORK is not None
    pool = Pool(misbehave, 2, FORK, initializer=_prepare_slowly, initargs=(str(tmp_path),))
    with pytest.raises(RuntimeError), pool:
        pool.start()
        pids = set(pool.pids)
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("started-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("the database was refused")
    assert not any(alive(pid) for pid in pids)
    assert list(tmp_path.glob("prepared-*")) == []  # killed, not waited for
