"""Watching runs: the progress rows runs write as they go, what readers make of them (live,
stuck, interrupted), `dedupdb status --watch` following a real index in another process, and
`dedupdb metrics` parsed by Prometheus' own parser. On SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner
from conftest import photo_files, save_photo
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from test_shipping import healthcheck_command

from dedupdb.actions import apply, plan_actions, undo
from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions, index
from dedupdb.metrics import metrics_text
from dedupdb.progress import (
    get_run,
    interrupted_runs,
    library_totals,
    live_runs,
    run_history,
    stuck_runs,
    totals_history,
)
from dedupdb.report import ReportOptions, build_report
from dedupdb.store import Store, open_store
from dedupdb.store.progress import ProgressFigures, ProgressRow
from dedupdb.store.schema import RunProgress as RunRow
from dedupdb.tracking import INDEX, Recorder, _now

SEQUENTIAL = IndexOptions(workers=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same test on SQLite and on the test PostgreSQL server."""
    if request.param == "postgresql":
        url = request.getfixturevalue("migrated_postgresql_url")
    else:
        url = str(tmp_path / "progress.sqlite")
    opened = open_store(url)
    yield opened
    opened.close()


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def set_row(store: Store, row_id: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(RunRow).where(RunRow.id == row_id).values(**values))


# ----------------------------------------------------------------------------- recording


def test_an_index_records_its_figures_and_errors(any_store: Store, photo_tree: Path) -> None:
    (photo_tree / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    summary = index(any_store, photo_tree, SEQUENTIAL)
    (run,) = run_history(any_store)
    assert (run.kind, run.state, run.recorded_state, run.ending) == (
        "index",
        "finished",
        "finished",
        "finished",
    )
    assert (run.planned, run.seen, run.done) == (7, 7, 7)
    assert (run.new, run.failed, run.unchanged) == (summary.new, 1, 0) == (6, 1, 0)
    sizes = sum(p.stat().st_size for p in photo_tree.rglob("*") if p.is_file())
    assert run.bytes_read == sizes
    assert [(e.number, e.path, e.kind) for e in run.errors] == [(1, "broken.jpg", "failed")]
    assert run.finished_at is not None and run.target == str(photo_tree)
    assert run.workers == () and live_runs(any_store) == []
    assert run.fraction == 1.0 and run.eta_seconds is None

    again = index(any_store, photo_tree, SEQUENTIAL)
    latest = run_history(any_store)[0]
    assert (latest.unchanged, latest.planned, latest.done) == (again.unchanged, 0, 0) == (6, 0, 0)
    assert latest.to_dict()["ending"] == "finished"


def test_the_progress_record_holds_every_column_of_the_row() -> None:
    """The store reads a row into ``ProgressRow`` and writes ``ProgressFigures`` back by
    column name: a column added to the table must be added to the records too."""
    columns = {c.name for c in RunRow.__table__.columns}
    assert {f.name for f in dataclasses.fields(ProgressRow)} == columns
    fixed = {"id", "kind", "index_run_id", "apply_run_id", "target", "host", "pid", "started_at"}
    assert {f.name for f in dataclasses.fields(ProgressFigures)} == columns - fixed


def test_the_recorder_writes_at_most_once_an_interval(any_store: Store) -> None:
    clock = [100.0]
    recorder = Recorder.start(any_store, INDEX, "/photos")
    recorder.clock = lambda: clock[0]
    recorder._last = clock[0]
    recorder._samples.clear()
    recorder._samples.append((clock[0], 0))
    recorder.phase, recorder.planned = "working", 100

    recorder.done = 10
    recorder.tick()  # no time has passed: nothing written
    run = get_run(any_store, recorder.id)
    assert run is not None and (run.done, run.phase) == (0, "planning")

    clock[0] += 2.0
    recorder.tick()
    run = get_run(any_store, recorder.id)
    assert run is not None and (run.done, run.planned, run.phase) == (10, 100, "working")
    assert run.rate == 5.0 and run.eta_seconds == 18.0 and run.fraction == 0.1
    moved_at = run.progressed_at

    time.sleep(0.01)
    clock[0] += 2.0
    recorder.tick()  # no count moved: the heartbeat goes on, progress does not
    run = get_run(any_store, recorder.id)
    assert run is not None and run.progressed_at == moved_at and run.updated_at > moved_at
    assert run.rate == 2.5

    recorder.finish("finished")
    recorder.done = 50
    recorder.flush()  # a finished row is not written again
    run = get_run(any_store, recorder.id)
    assert run is not None and (run.state, run.done) == ("finished", 10)


def test_apply_and_undo_record_their_runs(any_store: Store, tmp_path: Path) -> None:
    from test_actions import build_report as exact_report
    from test_actions import library

    root = library(tmp_path)
    index(any_store, root, SEQUENTIAL)
    plan = plan_actions(any_store, exact_report(any_store), quarantine=tmp_path / "q")
    done = apply(any_store, plan)
    undo(any_store, done.run_id)
    undone, applied, _ = run_history(any_store)
    assert (applied.kind, applied.state, applied.apply_run_id) == ("apply", "finished", done.run_id)
    assert (applied.planned, applied.done, applied.skipped) == (6, 6, 0)
    assert applied.bytes_read == done.bytes > 0
    assert (undone.kind, undone.state, undone.done, undone.bytes_read) == (
        "undo",
        "finished",
        6,
        done.bytes,
    )


# ----------------------------------------------------------------------------- judging


def test_a_dead_process_s_run_is_interrupted(any_store: Store) -> None:
    recorder = Recorder.start(any_store, INDEX, "/photos")
    assert [r.id for r in live_runs(any_store)] == [recorder.id]
    set_row(any_store, recorder.id, pid=dead_pid())
    run = get_run(any_store, recorder.id)
    assert run is not None
    assert (run.state, run.recorded_state, run.ending) == ("interrupted", "running", "interrupted")
    assert live_runs(any_store) == []
    assert [r.id for r in interrupted_runs(any_store)] == [recorder.id]


def test_another_host_s_run_is_judged_by_its_heartbeat(any_store: Store) -> None:
    recorder = Recorder.start(any_store, INDEX, "/photos")
    set_row(any_store, recorder.id, host="another-host", pid=dead_pid())
    assert [r.host for r in live_runs(any_store, stale_after=60)] == ["another-host"]
    set_row(any_store, recorder.id, updated_at=_now() - timedelta(seconds=120))
    assert live_runs(any_store, stale_after=60) == []
    run = get_run(any_store, recorder.id, stale_after=60)
    assert run is not None and run.state == "interrupted"


def test_a_run_that_stops_moving_is_stuck(any_store: Store) -> None:
    recorder = Recorder.start(any_store, INDEX, "/photos")  # this live process's run
    set_row(any_store, recorder.id, progressed_at=_now() - timedelta(seconds=1000))
    assert stuck_runs(any_store, stuck_after=5000) == []
    (run,) = stuck_runs(any_store, stuck_after=600)
    assert run.id == recorder.id and run.idle_seconds >= 1000

    runner = CliRunner()
    db = ["--db", any_store.url]
    result = runner.invoke(cli, ["status", "--check-stuck", "--stuck-after", "600", *db])
    assert result.exit_code == 1
    assert "Stuck: index of /photos" in result.output and "16m" in result.output
    result = runner.invoke(cli, ["status", "--check-stuck", "--stuck-after", "5000", *db])
    assert result.exit_code == 0, result.output
    assert "Running:  index of /photos" in result.output
    result = runner.invoke(
        cli, ["status", "--check-stuck", "--json", *db], env={"DEDUPDB_STUCK_AFTER": "600"}
    )
    assert result.exit_code == 1
    recorder.finish("finished")
    result = runner.invoke(
        cli, ["status", "--check-stuck", *db], env={"DEDUPDB_STUCK_AFTER": "600"}
    )
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------- metrics


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_parse_and_say_what_the_database_holds(any_store: Store, photo_tree: Path) -> None:
    shutil.copy2(photo_tree / "cat.jpg", photo_tree / "cat copy.jpg")
    (photo_tree / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    index(any_store, photo_tree, SEQUENTIAL)
    report = build_report(any_store)
    samples = parse(metrics_text(any_store))

    assert samples[("dedupdb_images", (("status", "present"),))] == 7
    assert samples[("dedupdb_index_failures", (("kind", "failed"),))] == 1
    assert samples[("dedupdb_exact_duplicates", ())] == 1
    copy_size = (photo_tree / "cat.jpg").stat().st_size
    assert samples[("dedupdb_exact_reclaimable_bytes", ())] == copy_size
    assert samples[("dedupdb_duplicates", ())] == report.summary.duplicates >= 1
    assert samples[("dedupdb_reclaimable_bytes", ())] == report.summary.reclaimable_bytes
    assert samples[("dedupdb_report_timestamp_seconds", ())] > time.time() - 600
    index_state = {
        state: samples[("dedupdb_last_run_state", (("kind", "index"), ("state", state)))]
        for state in ("running", "finished", "failed", "interrupted")
    }
    assert index_state == {"running": 0, "finished": 1, "failed": 0, "interrupted": 0}
    assert samples[("dedupdb_last_run_files", (("count", "failed"), ("kind", "index")))] == 1
    assert samples[("dedupdb_last_run_files", (("count", "done"), ("kind", "index")))] == 8
    assert samples[("dedupdb_last_run_duration_seconds", (("kind", "index"),))] > 0
    assert samples[("dedupdb_run_running", (("kind", "index"),))] == 0
    assert samples[("dedupdb_indexed_files_total", ())] == 7
    assert ("dedupdb_last_run_state", (("kind", "apply"), ("state", "finished"))) not in samples

    recorder = Recorder.start(any_store, INDEX, str(photo_tree))
    set_row(any_store, recorder.id, progressed_at=_now() - timedelta(seconds=100))
    samples = parse(metrics_text(any_store, stuck_after=50))
    assert samples[("dedupdb_run_running", (("kind", "index"),))] == 1
    assert samples[("dedupdb_run_stuck", (("kind", "index"),))] == 1
    assert samples[("dedupdb_last_run_state", (("kind", "index"), ("state", "running")))] == 1
    assert samples[("dedupdb_last_run_seconds_since_progress", (("kind", "index"),))] >= 100


def test_metrics_command_writes_the_file_atomically(
    store: Store, photo_tree: Path, tmp_path: Path
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    target = tmp_path / "textfile" / "dedupdb.prom"
    target.parent.mkdir()
    target.write_text("old")
    result = CliRunner().invoke(cli, ["metrics", "--db", store.url, "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert parse(target.read_text())[("dedupdb_images", (("status", "present"),))] == 6
    assert [p.name for p in target.parent.iterdir()] == ["dedupdb.prom"]
    assert target.stat().st_mode & 0o777 == 0o644

    printed = CliRunner().invoke(cli, ["metrics", "--db", store.url])
    assert printed.exit_code == 0 and "# TYPE dedupdb_images gauge" in printed.output
    result = CliRunner().invoke(
        cli, ["metrics", "--db", store.url, "-o", str(tmp_path / "nowhere" / "x.prom")]
    )
    assert result.exit_code == 1
    assert "cannot write the metrics" in result.output and "Traceback" not in result.output


def test_report_figures_are_kept_over_time(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    save_photo(root / "a.jpg", 1)
    index(store, root, SEQUENTIAL)
    build_report(store)
    build_report(store)  # the same figures: kept once
    assert [(p.images, p.duplicates) for p in totals_history(store)] == [(1, 0)]
    shutil.copy2(root / "a.jpg", root / "b.jpg")
    index(store, root, SEQUENTIAL)
    report = build_report(store)
    history = totals_history(store)
    assert [(p.images, p.duplicates) for p in history] == [(1, 0), (2, 1)]
    build_report(store, ReportOptions(threshold=0))  # other settings: another series
    assert [(p.images, p.duplicates) for p in totals_history(store)] == [(2, 1)]
    assert totals_history(store)[0].settings["threshold"] == 0
    assert len(totals_history(store, same_settings=False)) == 3
    build_report(store)
    assert totals_history(store)[:2] == history
    totals = library_totals(store)
    assert totals.report == totals_history(store)[-1]
    assert totals.report.reclaimable_bytes == report.summary.reclaimable_bytes > 0
    assert (totals.images, totals.exact_duplicates, totals.roots) == (2, 1, 1)


# ----------------------------------------------------------------------------- watching for real


# Enough that one worker takes several seconds even on an idle machine: progress is recorded
# once a second, and the tests must see the run between two of those updates.
WATCHED_PHOTOS = 480


@pytest.fixture(scope="module")
def many_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough photos for an index with one worker to take a few seconds, and one bad file."""
    root = tmp_path_factory.mktemp("watched") / "photos"
    photo_files(root, WATCHED_PHOTOS, (1280, 960))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    return root


def db_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("migrated_postgresql_url"))
    return str(tmp_path / "watched.sqlite")


def start_index(root: Path, db: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "dedupdb", "index", str(root), "--db", db]
    return subprocess.Popen(
        [*command, "--workers", "1", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def start_watch(db: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "dedupdb", "status", "--watch", "--db", db]
    return subprocess.Popen(
        [*command, "--interval", "0.2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_progress(db: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the run in proc has recorded a file done."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no progress recorded within a minute"
        store = open_store(db)
        try:
            live = live_runs(store)
        finally:
            store.close()
        if live and live[0].done > 0:
            return
        time.sleep(0.05)


def first_line(stream: IO[str]) -> str:
    line = stream.readline()
    assert line, "the watcher printed nothing"
    return line


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[Any]]]:
    started: list[subprocess.Popen[Any]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_watch_follows_a_real_index_to_its_end(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    many_photos: Path,
    processes: list[subprocess.Popen[Any]],
) -> None:
    db = db_for(backend, request, tmp_path)
    run = start_index(many_photos, db)
    processes.append(run)
    wait_for_progress(db, run)
    # Held still (a real stop of the process) until the watcher has seen it running, so that
    # the test does not depend on how fast this machine indexes.
    os.kill(run.pid, signal.SIGSTOP)
    try:
        watch = start_watch(db)
        processes.append(watch)
        assert watch.stdout is not None
        line = first_line(watch.stdout)
        # A stopped run makes no progress: the same run is stuck for --check-stuck.
        time.sleep(1.2)
        # The Docker image's HEALTHCHECK, as the image runs it.
        stuck = subprocess.run(
            [sys.executable, "-m", *healthcheck_command()],
            env={**os.environ, "DEDUPDB_DB": db, "DEDUPDB_STUCK_AFTER": "1"},
            capture_output=True,
            text=True,
        )
    finally:
        os.kill(run.pid, signal.SIGCONT)
    assert stuck.returncode == 1 and "Stuck: index of" in stuck.stderr, stuck.stderr
    rest, errors = watch.communicate(timeout=120)
    assert run.wait(timeout=60) == 0  # a file failed, which only `index --strict` fails on
    lines = [line, *rest.splitlines()]
    assert watch.returncode == 0, errors + rest
    progress = [x for x in lines if x.startswith(f"index of {many_photos}: ")]
    assert "files/s" in progress[0] and "/1 workers busy" in progress[0], progress
    # A worker that answered both its queued files before the (slow) indexer handed it the next
    # is idle at that instant: busy in some line, not necessarily the first.
    assert any("1/1 workers busy" in x for x in progress), progress
    done = [int(x.split(": ", 1)[1].split("/", 1)[0].replace(",", "")) for x in progress]
    assert done == sorted(done) and done[0] > 0 and done[-1] == WATCHED_PHOTOS + 1
    assert "  ! broken.jpg: not an image, or a format Pillow cannot read" in lines
    assert lines[-1].startswith(f"The index of {many_photos} finished after ")
    assert f"{WATCHED_PHOTOS} new" in lines[-1] and "1 failed" in lines[-1]
    assert "\r" not in rest  # not a terminal: plain lines


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_of_the_watched_run_shows_interrupted(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    many_photos: Path,
    processes: list[subprocess.Popen[Any]],
) -> None:
    db = db_for(backend, request, tmp_path)
    run = start_index(many_photos, db)
    processes.append(run)
    wait_for_progress(db, run)
    os.kill(run.pid, signal.SIGSTOP)  # running, until the watcher has seen it so
    watch = start_watch(db)
    processes.append(watch)
    assert watch.stdout is not None
    line = first_line(watch.stdout)
    assert line.startswith(f"index of {many_photos}: "), line
    os.kill(run.pid, signal.SIGKILL)
    assert run.wait(timeout=30) == -signal.SIGKILL
    rest, errors = watch.communicate(timeout=60)
    assert watch.returncode == 1, errors + rest
    last = rest.splitlines()[-1]
    assert last.startswith(f"The index of {many_photos} interrupted after "), rest
    assert "run it again to continue" in last

    store = open_store(db)
    try:
        (killed,) = run_history(store)
        assert (killed.state, killed.recorded_state) == ("interrupted", "running")
        assert 0 < killed.done < WATCHED_PHOTOS + 1
        samples = parse(metrics_text(store))
        key = ("dedupdb_last_run_state", (("kind", "index"), ("state", "interrupted")))
        assert samples[key] == 1
    finally:
        store.close()
    status = CliRunner().invoke(cli, ["status", "--watch", "--db", db])
    assert status.exit_code == 0
    assert "No run is going on. The last: index of" in status.output
    assert "interrupted" in status.output


def test_watch_json_prints_one_object_per_look(store: Store, photo_tree: Path) -> None:
    import json

    recorder = Recorder.start(store, INDEX, str(photo_tree))
    recorder.finish("failed", "OperationalError: the disk is full")
    result = CliRunner().invoke(cli, ["status", "--watch", "--json", "--db", store.url])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["running"] is False and data["last"]["state"] == "failed"
    assert data["last"]["message"] == "OperationalError: the disk is full"


def read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    """Read a pseudo-terminal until needle appears (or it closes); what was read."""
    import select

    seen = b""
    while needle not in seen:
        assert time.monotonic() < deadline, f"{needle!r} not seen in ...{seen[-300:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.slow
def test_watch_on_a_terminal_rewrites_its_line(
    tmp_path: Path, many_photos: Path, processes: list[subprocess.Popen[Any]]
) -> None:
    import pty

    db = str(tmp_path / "watched.sqlite")
    run = start_index(many_photos, db)
    processes.append(run)
    wait_for_progress(db, run)
    os.kill(run.pid, signal.SIGSTOP)
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "dedupdb", "status", "--watch", "--db", db]
    watch = subprocess.Popen(
        [*command, "--interval", "0.2"], stdout=follower, stderr=subprocess.PIPE
    )
    processes.append(watch)
    os.close(follower)
    try:
        deadline = time.monotonic() + 60
        shown = read_until(leader, f"index of {many_photos}: ".encode(), deadline)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        shown += read_until(leader, b"run it again to continue", deadline)
        watch.wait(timeout=30)
    finally:
        os.close(leader)
    assert watch.returncode == 1
    text = shown.decode()
    assert text.startswith(f"\rindex of {many_photos}: "), text
    # Redrawn only when it changes: the run was stopped, then killed (the line says so).
    assert text.count("\rindex of ") == 2
    assert f"\r\nThe index of {many_photos} interrupted after " in text.replace("\r\r\n", "\r\n")


RUNNER = """
import time
from dedupdb.store import open_store
from dedupdb.tracking import INDEX, Recorder

store = open_store()  # $DEDUPDB_DB: a URL in the command line could name dedupdb
recorder = Recorder.start(store, INDEX, "/photos")
print(recorder.id, flush=True)
time.sleep(120)
"""


def test_a_run_of_a_program_using_the_library_is_live_until_it_dies(
    tmp_path: Path, store: Store, processes: list[subprocess.Popen[Any]]
) -> None:
    """A program that indexes through the library has no 'dedupdb' in its command line (the
    run locks' test of a pid): its fresh heartbeat says it runs; kill -9 says it does not."""
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    runner = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DEDUPDB_DB": store.url},
    )
    processes.append(runner)
    assert runner.stdout is not None
    row_id = int(runner.stdout.readline())
    with open(f"/proc/{runner.pid}/cmdline", "rb") as handle:
        assert b"dedupdb" not in handle.read()
    run = get_run(store, row_id)
    assert run is not None and run.state == "running"
    set_row(store, row_id, updated_at=_now() - timedelta(seconds=120))
    run = get_run(store, row_id, stale_after=60)
    assert run is not None and run.state == "interrupted"  # alive, but silent: not the run
    set_row(store, row_id, updated_at=_now())
    runner.kill()
    runner.wait()
    run = get_run(store, row_id)
    assert run is not None and run.state == "interrupted"


@pytest.mark.slow
def test_watch_follows_an_apply_started_elsewhere(
    tmp_path: Path, store: Store, processes: list[subprocess.Popen[Any]]
) -> None:
    from test_actions import library
    from test_actions_crash import start

    root = library(tmp_path, families=4, copies=2)
    index(store, root, SEQUENTIAL)
    applying = start(tmp_path, store, "slow")  # each move 50 ms slower: a run to watch
    processes.append(applying)
    deadline = time.monotonic() + 60
    while not any(r.kind == "apply" for r in live_runs(store)):
        assert applying.poll() is None, applying.stderr.read() if applying.stderr else ""
        assert time.monotonic() < deadline, "the apply recorded no run within a minute"
        time.sleep(0.01)
    os.kill(applying.pid, signal.SIGSTOP)
    try:
        watch = start_watch(store.url)
        processes.append(watch)
        assert watch.stdout is not None
        line = first_line(watch.stdout)
    finally:
        os.kill(applying.pid, signal.SIGCONT)
    rest, errors = watch.communicate(timeout=60)
    assert applying.wait(timeout=60) == 0
    assert watch.returncode == 0, errors + rest
    report = tmp_path / "report.json"
    assert line.startswith(f"apply of {report}: "), line
    last = rest.splitlines()[-1]
    assert last.startswith(f"The apply of {report} finished after "), last
    assert last.endswith(": 8 done, 0 skipped."), last
    (applied, _) = run_history(store, limit=2)
    assert (applied.kind, applied.state, applied.done, applied.planned) == (
        "apply",
        "finished",
        8,
        8,
    )
