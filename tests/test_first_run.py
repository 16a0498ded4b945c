"""A newcomer's first hour with the ``dedupdb`` command: a library with unreadable files still
gets its report, ``apply`` acts on the report that was reviewed, conflicting options are usage
errors, and the help shows the workflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import photo_files, save_photo

from dedupdb.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def library(root: Path) -> Path:
    """Three photos, each with a byte copy in Downloads and another in Pictures."""
    for path in photo_files(root / "Camera", 3, (200, 150)):
        for folder in ("Downloads", "Pictures"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, root / folder / path.name)
    return root


def test_index_of_a_folder_that_does_not_exist_creates_no_database(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    result = run("index", str(tmp_path / "Picturs"), "--db", str(db))
    assert result.exit_code == 1
    assert "folder not found" in result.output
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []


def test_unreadable_files_are_listed_and_the_run_succeeds_unless_strict(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    save_photo(root / "good.jpg", 1)
    (root / "garbage.jpg").write_bytes(b"\x00" * 5000)
    db = ["--db", str(tmp_path / "d.sqlite")]
    result = run("index", str(root), *db, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "garbage.jpg" in result.output
    assert "1 file could not be read" in result.output
    strict = run("index", str(root), *db, "--retry-errors", "--strict")
    assert strict.exit_code == 3
    assert "--strict" in run("index", "--help").output
    assert "3  `index --strict`" in run("--help").output


@pytest.mark.parametrize(
    ("args", "first", "second"),
    [
        (["--trash", "--delete"], "--trash", "--delete"),
        (["--hardlink", "--symlink"], "--hardlink", "--symlink"),
        (["--delete", "--hardlink"], "--hardlink", "--delete"),
    ],
)
def test_conflicting_actions_are_a_usage_error(
    tmp_path: Path, args: list[str], first: str, second: str
) -> None:
    root = library(tmp_path / "photos")
    db = ["--db", str(tmp_path / "d.sqlite")]
    assert run("index", str(root), *db, "-q").exit_code == 0
    assert run("report", *db, "-q").exit_code == 0
    result = run("apply", *args, *db)
    assert result.exit_code == 2, result.output
    assert first in result.output and second in result.output
    assert "Plan:" not in result.output  # nothing was planned
    listed = run("not-duplicate", "--list", "--cluster", "1", *db)
    assert listed.exit_code == 2 and "--list and --cluster" in listed.output


def test_plain_apply_acts_on_the_last_report_and_its_keepers(tmp_path: Path) -> None:
    root = library(tmp_path / "photos")
    db = ["--db", str(tmp_path / "d.sqlite")]
    assert run("index", str(root), *db, "-q").exit_code == 0
    never = run("apply", *db)
    assert never.exit_code == 1
    assert "no report has been made yet" in never.output and "dedupdb report" in never.output

    reviewed = run("report", "--prefer", "Downloads", "--html", str(tmp_path / "r.html"), *db)
    assert reviewed.exit_code == 0, reviewed.output
    plan = run("apply", "--json", *db)
    assert plan.exit_code == 0, plan.output
    data = json.loads(plan.output)
    assert data["source"] == "last report"
    assert data["report"]["settings"]["prefer"] == ["Downloads"]
    keepers = {Path(a["keeper_path"]).parent.name for a in data["actions"]}
    assert keepers == {"Downloads"}
    assert len(data["actions"]) == 6

    text = run("apply", *db)
    assert "Report: last report, made " in text.output
    assert "prefer Downloads" in text.output

    # Another report (default keepers) becomes the one apply acts on.
    assert run("report", "-q", *db).exit_code == 0
    again = json.loads(run("apply", "--json", *db).output)
    assert again["report"]["settings"]["prefer"] == []
    assert {Path(a["keeper_path"]).parent.name for a in again["actions"]} != {"Downloads"}

    # Acting: the files kept are the reviewed report's keepers.
    assert run("report", "--prefer", "Downloads", "-q", *db).exit_code == 0
    done = run("apply", "--yes", *db)
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (root / "Downloads").iterdir()) == [
        "000.jpg",
        "001.jpg",
        "002.jpg",
    ]
    assert list((root / "Camera").iterdir()) == [] and list((root / "Pictures").iterdir()) == []


def test_help_shows_the_workflow_with_examples() -> None:
    text = run("--help").output
    positions = [text.index(f"dedupdb {step}") for step in ("index", "report", "apply", "undo")]
    assert positions == sorted(positions)
    assert "Workflow:" in text


def test_history_has_column_headers(tmp_path: Path) -> None:
    root = library(tmp_path / "photos")
    db = ["--db", str(tmp_path / "d.sqlite")]
    assert run("history", *db).exit_code == 1  # no database yet
    assert run("index", str(root), *db, "-q").exit_code == 0
    assert run("history", *db).output.strip() == "No apply runs yet."
    assert run("report", "-q", *db).exit_code == 0
    assert run("apply", "--yes", *db).exit_code == 0
    lines = run("history", *db).output.splitlines()
    header = lines[0].split()
    assert header[:4] == ["RUN", "STARTED", "ACTION", "STATE"]
    assert lines[1].split()[0] == "1" and "move" in lines[1]
