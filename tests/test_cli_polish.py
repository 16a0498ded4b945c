"""What a new user meets first: --version, exit codes, one-line errors, colours, backup."""

from __future__ import annotations

import importlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import dedupdb
import dedupdb.cli
from dedupdb.cli import cli, main
from dedupdb.store import open_store

ROOT = Path(__file__).resolve().parent.parent
ANSI = "\x1b["


def invoke(*args: str, color: bool = False, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(cli, list(args), color=color, env=env)


def test_version_is_pyprojects() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.M)
    assert match
    assert dedupdb.__version__ == match.group(1)
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(cli, [flag])
        assert result.exit_code == 0
        assert result.output.strip() == f"dedupdb, version {match.group(1)}"


def test_exit_code_0_for_success(photo_tree: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "ok.sqlite")
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["index", str(photo_tree), "--db", db, "--workers", "1"]).exit_code == 0
    )
    assert runner.invoke(cli, ["status", "--db", db]).exit_code == 0


def test_exit_code_3_with_strict_when_files_could_not_be_read(
    photo_tree: Path, tmp_path: Path
) -> None:
    (photo_tree / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    db = str(tmp_path / "bad.sqlite")
    args = ["index", str(photo_tree), "--db", db, "--workers", "1", "--strict"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3
    assert "broken.jpg" in result.output
    assert "failed" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["index"],  # missing argument
        ["index", ".", "--no-such-option"],
        ["index", ".", "--hash-size", "12"],
        ["no-such-command"],
    ],
)
def test_exit_code_2_for_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["index", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: folder not found: ")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from dedupdb.errors import RootNotFoundError

    result = CliRunner().invoke(cli, ["--debug", "index", str(tmp_path / "nowhere")])
    assert isinstance(result.exception, RootNotFoundError)


def test_a_database_from_a_newer_dedupdb_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite"
    open_store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = CliRunner().invoke(cli, ["status", "--db", str(db)])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "newer dedupdb" in result.output


def test_colours_on_a_terminal_but_never_with_no_color(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    on_terminal = CliRunner().invoke(cli, ["index", missing], color=True)
    assert ANSI in on_terminal.output  # the error is red on a terminal
    no_color = CliRunner().invoke(cli, ["index", missing], color=True, env={"NO_COLOR": "1"})
    assert ANSI not in no_color.output
    assert no_color.output.startswith("Error: folder not found")
    piped = CliRunner().invoke(cli, ["index", missing])  # not a terminal
    assert ANSI not in piped.output


def test_help_documents_exit_codes_and_completion() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for text in (
        "Exit codes:",
        "0  success",
        "1  an error",
        "2  usage error",
        "3  `index --strict`",
        "NO_COLOR",
    ):
        assert text in result.output
    assert "_DEDUPDB_COMPLETE=bash_source dedupdb" in result.output


def test_shell_completion_script_is_generated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dedupdb.cli.signal, "signal", lambda *args: None)  # keep pytest's
    monkeypatch.setenv("_DEDUPDB_COMPLETE", "bash_source")
    monkeypatch.setattr(sys, "argv", ["dedupdb"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    assert "_dedupdb_completion" in capsys.readouterr().out


def test_backup_is_a_consistent_copy(photo_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite"
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["index", str(photo_tree), "--db", str(db), "--workers", "1"]).exit_code
        == 0
    )
    target = tmp_path / "backups" / "copy.sqlite"
    result = runner.invoke(cli, ["backup", str(target), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (6,)
    status = runner.invoke(cli, ["status", "--json", "--db", str(target)])
    assert json.loads(status.output)["images"] == 6
    itself = runner.invoke(cli, ["backup", str(db), "--db", str(db)])
    assert itself.exit_code == 1
    assert "is the database itself" in itself.output


def test_unexpected_errors_are_one_line_from_the_console_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() turns anything unforeseen into one line; --debug shows the traceback."""

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dedupdb.cli.signal, "signal", lambda *args: None)  # keep pytest's
    monkeypatch.setattr(importlib.import_module("dedupdb.library"), "status", boom)
    monkeypatch.delenv("DEDUPDB_DEBUG", raising=False)
    open_store().close()  # the default database (conftest points DEDUPDB_DB into tmp_path)
    monkeypatch.setattr(sys, "argv", ["dedupdb", "status"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("Error: unexpected RuntimeError: disk on fire")
    monkeypatch.setattr(sys, "argv", ["dedupdb", "--debug", "status"])
    with pytest.raises(RuntimeError, match="disk on fire"):
        main()


# What a command may not load: each command imports the library modules it uses when it runs.
IMPORTS_PROBE = """
import sys
from dedupdb.cli import cli
try:
    cli(sys.argv[1:], prog_name="dedupdb")
except SystemExit:
    pass
heavy = ("sqlalchemy", "alembic", "numpy", "PIL", "scipy", "numba", "platformdirs", "jinja2")
print(" ".join(name for name in heavy if name in sys.modules), file=sys.stderr)
"""


def loaded_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(done.stderr.splitlines()[-1].split())  # the probe's line: after any message


def test_help_version_and_status_load_only_what_they_use(tmp_path: Path) -> None:
    assert loaded_by("--version") == set()
    assert loaded_by("--help") == set()
    assert loaded_by("index", "--help") == {"platformdirs"}  # names the default database
    db = str(tmp_path / "probe.sqlite")
    assert loaded_by("status", "--db", db) == {"sqlalchemy"}  # refused: no database there
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "scipy" not in loaded_by("index", str(empty), "--db", db, "--quiet")  # creates it
    assert loaded_by("status", "--db", db) == {"sqlalchemy"}  # at head: no Alembic


def test_main_pauses_the_garbage_collector_only_while_the_command_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import gc

    frozen: list[bool] = []  # whether the collector was running when start-up was frozen
    monkeypatch.setattr(dedupdb.cli.signal, "signal", lambda *args: None)  # keep pytest's
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(gc.isenabled()))
    open_store(tmp_path / "gc.sqlite").close()
    monkeypatch.setattr(sys, "argv", ["dedupdb", "status", "--db", str(tmp_path / "gc.sqlite")])
    try:
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == 0
        assert frozen == [False]  # paused until the database was open, then frozen
        assert gc.isenabled()
        monkeypatch.setattr(sys, "argv", ["dedupdb", "--help"])  # opens no database
        with pytest.raises(SystemExit):
            main()
        assert frozen == [False]
        assert gc.isenabled()
    finally:
        gc.enable()
