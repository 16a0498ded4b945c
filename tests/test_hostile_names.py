"""File names that try to command the terminal or forge output lines, through every command
that prints names: the terminal gets them escaped (as ``ls`` and ``git`` show them), JSON and
CSV get them exactly.

The names are real files in a real tree, indexed into a real database: an OSC sequence that
would set the window title followed by one that clears the screen, and a newline followed by a
forged error line.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_actions import photo_bytes

from dedupdb.cli import cli
from dedupdb.walk import printable

TITLE_AND_CLEAR = "evil\x1b]0;owned\x07\x1b[2J.jpg"
FORGED_LINE = "x\nError: your disk is failing.jpg"
BAD_FILE = "bad\x1b[31m\rname.png"  # not an image: recorded as a failure
QUARANTINE = "q\x1b]0;q\x07"

# What a terminal would obey: any C0/C1 control but the newlines between lines, and DEL.
OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def assert_safe(result: Result, *names: str) -> None:
    """Nothing the terminal would obey, no forged line, and each name shown escaped."""
    for stream in (result.stdout, result.stderr):
        assert not OBEYED.search(stream), stream
        assert not any(line.startswith("Error: your disk") for line in stream.splitlines())
    for name in names:
        assert printable(name) in result.output, (name, result.output)


@pytest.fixture
def hostile(tmp_path: Path, db_path: Path) -> tuple[Path, list[str]]:
    """A tree whose only duplicates have hostile names, plus a hostile-named broken file,
    indexed; the CLI's --db arguments."""
    root = tmp_path / "photos"
    root.mkdir()
    (root / TITLE_AND_CLEAR).write_bytes(photo_bytes(300))
    (root / FORGED_LINE).write_bytes(photo_bytes(300))
    (root / BAD_FILE).write_bytes(b"this is text, not a PNG")
    (root / "other.jpg").write_bytes(photo_bytes(301))
    db = ["--db", str(db_path)]
    indexed = CliRunner().invoke(cli, ["index", str(root), "--workers", "1", "-q", *db])
    assert indexed.exit_code == 0, indexed.output  # the broken file is recorded, not fatal
    assert_safe(indexed, BAD_FILE)
    return root, db


def test_printable_escapes_what_a_terminal_obeys() -> None:
    assert printable(TITLE_AND_CLEAR) == "evil\\x1b]0;owned\\x07\\x1b[2J.jpg"
    assert printable(FORGED_LINE) == "x\\nError: your disk is failing.jpg"
    assert printable("a\tb\rc\x7fd\x9be") == "a\\tb\\rc\\x7fd\\x9be"
    assert printable("right\u202eto left\u2028line") == "right\\u202eto left\\u2028line"
    assert printable(b"caf\xe9\x1b.jpg") == "caf\\xe9\\x1b.jpg"  # bytes: as ``display``
    assert printable("Ünïcode 写真 ok.jpg") == "Ünïcode 写真 ok.jpg"


def test_report_prints_names_escaped_and_writes_them_exactly(
    hostile: tuple[Path, list[str]],
) -> None:
    root, db = hostile
    summary = CliRunner().invoke(cli, ["report", *db])
    assert summary.exit_code == 0, summary.output
    assert "keep " in summary.output
    assert_safe(summary)
    assert (
        printable(str(root / TITLE_AND_CLEAR)) in summary.output
        or printable(str(root / FORGED_LINE)) in summary.output
    )

    as_json = CliRunner().invoke(cli, ["report", "--json", "-", *db])
    paths = {m["path"] for c in json.loads(as_json.stdout)["clusters"] for m in c["members"]}
    assert paths == {str(root / TITLE_AND_CLEAR), str(root / FORGED_LINE)}

    as_csv = CliRunner().invoke(cli, ["report", "--csv", "-", *db])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["path"] for r in rows} == paths


def test_status_errors_prints_the_failed_name_escaped(hostile: tuple[Path, list[str]]) -> None:
    root, db = hostile
    result = CliRunner().invoke(cli, ["status", "--errors", *db])
    assert result.exit_code == 0, result.output
    assert_safe(result, str(root / BAD_FILE))
    as_json = CliRunner().invoke(cli, ["status", "--errors", "--json", *db])
    assert [e["path"] for e in json.loads(as_json.stdout)["errors"]] == [str(root / BAD_FILE)]


def test_apply_plan_history_and_undo_print_names_escaped(
    hostile: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, db = hostile
    quarantine = tmp_path / QUARANTINE
    report = tmp_path / "report.json"
    CliRunner().invoke(cli, ["report", "--json", str(report), "-q", *db])
    move_to = ["--move-to", str(quarantine)]
    plan = CliRunner().invoke(cli, ["apply", str(report), *move_to, *db])
    assert plan.exit_code == 0, plan.output
    assert_safe(plan, str(root / TITLE_AND_CLEAR), str(root / FORGED_LINE), str(quarantine))
    assert len(plan.stdout.splitlines()) == 5  # report, plan, keeper, the one move, dry run

    done = CliRunner().invoke(cli, ["apply", str(report), *move_to, "--yes", "-q", *db])
    assert done.exit_code == 0, done.output
    history = CliRunner().invoke(cli, ["history", *db])
    assert_safe(history, str(quarantine))

    # The quarantined copy vanishes: undo names it (and the folder) in what it skips.
    shutil.rmtree(quarantine / "photos")
    undone = CliRunner().invoke(cli, ["undo", *db])
    assert undone.exit_code == 1, undone.output
    assert "gone" in undone.output
    assert_safe(undone, str(quarantine))
    as_json = CliRunner().invoke(cli, ["history", "--json", *db])
    assert json.loads(as_json.stdout)[0]["quarantine"] == str(quarantine)


def test_not_duplicate_list_prints_names_escaped(hostile: tuple[Path, list[str]]) -> None:
    root, db = hostile
    a, b = str(root / TITLE_AND_CLEAR), str(root / "other.jpg")
    marked = CliRunner().invoke(cli, ["not-duplicate", a, b, *db])
    assert marked.exit_code == 0, marked.output
    listed = CliRunner().invoke(cli, ["not-duplicate", "--list", *db])
    assert listed.exit_code == 0, listed.output
    assert_safe(listed, a)
    assert len(listed.stdout.splitlines()) == 1


def test_an_error_message_naming_a_hostile_path_is_escaped(tmp_path: Path) -> None:
    missing = tmp_path / FORGED_LINE
    result = CliRunner().invoke(cli, ["index", str(missing), "--db", str(tmp_path / "d.sqlite")])
    assert result.exit_code != 0
    assert_safe(result)
