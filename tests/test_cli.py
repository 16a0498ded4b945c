"""The ``dedupdb`` command as a user meets it: summaries, JSON, exit codes (0 fine, 1 problems,
2 usage), one-line errors unless --debug, status, prune, and no progress bar off a terminal."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import count_image_rows, photo_files, save_photo

from dedupdb.cli import ProgressBar, cli
from dedupdb.errors import ParameterMismatchError
from dedupdb.indexing import Progress
from dedupdb.store import open_store


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def db_args(tmp_path: Path) -> list[str]:
    return ["--db", str(tmp_path / "cli.sqlite")]


def test_index_prints_a_summary_and_exits_0(tmp_path: Path, photo_tree: Path) -> None:
    result = run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    assert result.exit_code == 0, result.output
    assert f"Indexed {photo_tree}" in result.stdout
    assert "new                6" in result.stdout
    assert "failed             0" in result.stdout
    # Not a terminal: no progress bar, nothing at all on stderr.
    assert result.stderr == ""
    again = run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    assert "unchanged          6" in again.stdout


def test_index_json_summary(tmp_path: Path, photo_tree: Path) -> None:
    result = run("index", str(photo_tree), *db_args(tmp_path), "--json", "--workers", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new"] == 6
    assert summary["root"] == str(photo_tree)
    keys = {"changed", "moved", "unchanged", "missing", "skipped", "failed", "seconds", "failures"}
    assert keys <= set(summary)


def test_failed_files_are_named_and_the_run_succeeds(tmp_path: Path, photo_tree: Path) -> None:
    (photo_tree / "broken.jpg").write_bytes(b"not a picture")
    with open(os.path.join(os.fsencode(photo_tree), b"bad\xff.png"), "wb") as handle:
        handle.write(b"")
    result = run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    assert result.exit_code == 0, result.output  # recorded and listed: a completed run
    assert "2 files could not be read" in result.stdout
    assert "dedupdb status --errors" in result.stdout
    assert "failed             2" in result.stdout
    assert "! broken.jpg: not an image" in result.stdout
    assert "! bad\\xff.png: empty file" in result.stdout
    as_json = run(
        "index", str(photo_tree), *db_args(tmp_path), "--json", "--retry-errors", "--strict"
    )
    assert as_json.exit_code == 3  # --strict: for scripts that must fail on them
    assert {f["path"] for f in json.loads(as_json.stdout)["failures"]} == {
        "broken.jpg",
        "bad\\xff.png",
    }
    # Known bad and unchanged: not a new failure, so the run is fine.
    quiet = run("index", str(photo_tree), *db_args(tmp_path))
    assert quiet.exit_code == 0
    assert "known bad          2" in quiet.stdout


def test_skipped_files_do_not_fail_the_run(tmp_path: Path) -> None:
    save_photo(tmp_path / "p" / "tiny.jpg", 1, (50, 50))
    result = run("index", str(tmp_path / "p"), *db_args(tmp_path), "--min-resolution", "64")
    assert result.exit_code == 0
    assert "skipped            1" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["index"],
        ["index", ".", "--hash-size", "12"],
        ["index", ".", "--workers", "0"],
        ["index", ".", "--no-such-option"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert "Traceback" not in result.output


def test_library_errors_are_one_clear_line(tmp_path: Path, photo_tree: Path) -> None:
    run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    result = run("index", str(photo_tree), *db_args(tmp_path), "--hash-size", "16")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: this database was indexed with hash size 8")
    assert "--rehash" in lines[0]
    assert "Traceback" not in result.output
    rehashed = run(
        "index",
        str(photo_tree),
        *db_args(tmp_path),
        "--hash-size",
        "16",
        "--rehash",
        "--workers",
        "1",
    )
    assert rehashed.exit_code == 0, rehashed.output
    assert "changed            6" in rehashed.stdout


def test_debug_shows_the_traceback(tmp_path: Path, photo_tree: Path) -> None:
    run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    result = run("--debug", "index", str(photo_tree), *db_args(tmp_path), "--hash-size", "16")
    assert result.exit_code == 1
    assert isinstance(result.exception, ParameterMismatchError)


def test_missing_folder_and_bad_database(tmp_path: Path) -> None:
    result = run("index", str(tmp_path / "nope"), *db_args(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: folder not found: {tmp_path / 'nope'}")
    (tmp_path / "notes.sqlite").write_text("shopping list\n" * 200)
    bad = run("status", "--db", str(tmp_path / "notes.sqlite"))
    assert bad.exit_code == 1
    assert "not a dedupdb database" in bad.stderr
    assert "Traceback" not in bad.output


def test_empty_root_that_held_images_is_refused_with_a_hint(
    tmp_path: Path, photo_tree: Path
) -> None:
    assert run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1").exit_code == 0
    photo_tree.rename(tmp_path / "on-the-drive")
    photo_tree.mkdir()  # the mount point, drive not mounted
    refused = run("index", str(photo_tree), *db_args(tmp_path))
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: {photo_tree} is empty, but")
    assert "is the drive or share mounted?" in refused.stderr
    assert "--allow-empty" in refused.stderr
    allowed = run("index", str(photo_tree), *db_args(tmp_path), "--allow-empty", "--json")
    assert allowed.exit_code == 0
    assert json.loads(allowed.stdout)["missing"] > 0


def test_interrupt_says_the_work_is_saved(
    tmp_path: Path, photo_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("dedupdb.indexing"), "index", interrupted)
    result = run("index", str(photo_tree), *db_args(tmp_path))
    assert result.exit_code == 130
    assert "run the same command again to continue" in result.stderr


def test_commands_other_than_index_refuse_a_database_that_does_not_exist(
    tmp_path: Path, photo_tree: Path
) -> None:
    missing = tmp_path / "typo.sqlite"
    for command in (
        ["status"], ["report"], ["history"], ["prune"], ["undo"],
        ["not-duplicate", "--cluster", "1"], ["apply", str(tmp_path / "report.json")],
        ["backup", str(tmp_path / "copy.sqlite")],
    ):  # fmt: skip
        result = run(*command, "--db", str(missing))
        assert result.exit_code == 1, (command, result.output)
        assert f"no database at {missing}" in result.stderr, command
        assert f"dedupdb index FOLDER --db {missing}" in result.stderr
        assert "Traceback" not in result.output
    assert not missing.exists()  # nothing left behind a mistyped --db
    assert run("index", str(photo_tree), "--db", str(missing), "--workers", "1").exit_code == 0
    assert run("status", "--db", str(missing)).exit_code == 0


def test_status_text_errors_and_json(tmp_path: Path, photo_tree: Path) -> None:
    open_store(tmp_path / "cli.sqlite").close()  # a database with nothing indexed yet
    empty = run("status", *db_args(tmp_path))
    assert empty.exit_code == 0
    assert "No folders indexed yet" in empty.stdout
    (photo_tree / "broken.jpg").write_bytes(b"x")
    run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    text = run("status", *db_args(tmp_path))
    assert text.exit_code == 0
    assert "Images:   6" in text.stdout
    assert f"{photo_tree}: 6 images, 0 missing, 1 failed, 0 skipped" in text.stdout
    assert "broken.jpg" not in text.stdout
    errors = run("status", *db_args(tmp_path), "--errors")
    assert f"failed: {photo_tree / 'broken.jpg'}: not an image" in errors.stdout
    data = json.loads(run("status", *db_args(tmp_path), "--json", "--errors").stdout)
    assert data["images"] == 6
    assert data["roots"][0]["failed"] == 1
    assert data["errors"][0]["reason"].startswith("not an image")


def test_default_database_comes_from_the_environment(photo_tree: Path, tmp_path: Path) -> None:
    result = run("index", str(photo_tree), "--workers", "1")
    assert result.exit_code == 0
    assert (tmp_path / "default.sqlite").exists()  # conftest points DEDUPDB_DB there
    assert str(tmp_path / "default.sqlite") in run("status").stdout


def test_prune(tmp_path: Path, photo_tree: Path) -> None:
    run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    (photo_tree / "cat.jpg").unlink()
    run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    result = run("prune", *db_args(tmp_path), str(photo_tree))
    assert result.exit_code == 0
    assert result.stdout.strip() == "Forgot 1 missing image."
    again = run("prune", *db_args(tmp_path))
    assert again.stdout.strip() == "Forgot 0 missing images."
    unknown = run("prune", *db_args(tmp_path), str(tmp_path / "elsewhere"))
    assert unknown.exit_code == 1
    assert "is not an indexed folder" in unknown.stderr


def test_version() -> None:
    from dedupdb import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_progress_bar_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar(enabled=True)
    bar.update(Progress(0, 4, 0, ""))
    bar.update(Progress(3, 4, 1, "a.jpg"))
    bar.close()
    shown = capsys.readouterr().err
    assert "3/4" in shown and "errors=1" in shown
    off = ProgressBar(enabled=False)
    off.update(Progress(1, 4, 0, "a.jpg"))
    off.close()
    assert capsys.readouterr().err == ""


def test_break_lock(tmp_path: Path, photo_tree: Path) -> None:
    from datetime import datetime

    from dedupdb.store import open_store
    from dedupdb.store.schema import Run

    store = open_store(tmp_path / "cli.sqlite")
    with store.transaction() as session:
        session.add(Run(host="gone-host", pid=7, status="running", started_at=datetime(2026, 1, 1)))
    store.close()
    busy = run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1")
    assert busy.exit_code == 1
    assert busy.stderr.count("\n") == 1
    assert "pid 7 on gone-host" in busy.stderr and "--break-lock" in busy.stderr
    taken = run("index", str(photo_tree), *db_args(tmp_path), "--workers", "1", "--break-lock")
    assert taken.exit_code == 0, taken.output


# ----------------------------------------------------------------- the real console script
# CliRunner calls the click group; these run `python -m dedupdb` (cli.main, with its SIGTERM
# handler) in a subprocess with a real worker pool, as a user's terminal or `docker stop` does.


def _console(*args: str) -> list[str]:
    return [sys.executable, "-m", "dedupdb", *args]


@pytest.mark.slow
def test_console_run_with_workers_prints_no_traceback(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    photo_files(root, 12, size=(320, 240))
    done = subprocess.run(
        _console("index", str(root), "--db", str(tmp_path / "i.sqlite"), "--workers", "2"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "new               12" in done.stdout


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_the_next_run_continues(tmp_path: Path) -> None:
    root, db = tmp_path / "photos", tmp_path / "i.sqlite"
    files = photo_files(root, 80)
    proc = subprocess.Popen(
        _console("index", str(root), "--db", str(db), "--workers", "2", "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while count_image_rows(db) < 3:  # some work committed: the pool is busy
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no row committed within a minute"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # what `docker stop` and systemd send
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert "Interrupted" in out + err
    result = run("index", str(root), "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["new"] + summary["unchanged"] == len(files)
    assert summary["failed"] == 0
