"""A newcomer's first hour with the ``dedupdb`` command: a library with unreadable files still
gets its report, ``apply`` acts on the report that was reviewed, conflicting options are usage
errors, and the help shows the workflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

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


def mixed_library(root: Path) -> Path:
    """Two pictures; each has a byte copy, and the first a smaller (edited) copy too, so its
    cluster holds identical and edited copies together."""
    from PIL import Image

    for seed in (1, 2):
        original = save_photo(root / "Camera" / f"{seed}.jpg", seed, (400, 300), quality=95)
        (root / "Backup").mkdir(parents=True, exist_ok=True)
        shutil.copy2(original, root / "Backup" / original.name)
    with Image.open(root / "Camera" / "1.jpg") as im:
        im.resize((200, 150)).save(root / "small.jpg", quality=80)
    return root


def test_exact_copies_are_counted_inside_clusters_with_edited_copies(tmp_path: Path) -> None:
    root = mixed_library(tmp_path / "photos")
    db = ["--db", str(tmp_path / "d.sqlite")]
    assert run("index", str(root), *db, "-q").exit_code == 0
    out = tmp_path / "r.json"
    summary = run("report", "--json", str(out), *db)
    assert summary.exit_code == 0, summary.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["summary"]["duplicates"] == 3
    assert data["summary"]["exact_clusters"] == 1  # the second picture's two copies
    assert data["summary"]["exact_duplicates"] == 2  # and one copy in the mixed cluster
    assert "(2 byte-identical to another copy" in summary.output

    exact = run("report", "--exact", "--json", str(out), *db)
    assert exact.exit_code == 0, exact.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["settings"]["exact"] is True
    assert [len(c["members"]) for c in data["clusters"]] == [2, 2]
    assert all(len({m["content_hash"] for m in c["members"]}) == 1 for c in data["clusters"])
    assert "exact copies only" in exact.output
    both = run("report", "--exact", "--threshold", "4", *db)
    assert both.exit_code == 2 and "--exact and --threshold" in both.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
def test_the_html_exact_copies_filter_finds_them_in_mixed_clusters(tmp_path: Path) -> None:
    from test_html_report import chromium

    root = mixed_library(tmp_path / "photos")
    db = ["--db", str(tmp_path / "d.sqlite")]
    assert run("index", str(root), *db, "-q").exit_code == 0
    page = tmp_path / "r.html"
    assert run("report", "--html", str(page), "--thumbnails", "0", *db).exit_code == 0
    dom = chromium("--dump-dom", page.as_uri() + "?kind=exact").stdout
    assert 'data-rendered="2"' in dom
    assert dom.count('<article class="cluster"') == 2  # the mixed cluster too
    assert "small.jpg" in dom
    assert "2 byte-identical to another copy" in dom


def test_a_cropped_copy_is_named_as_such_in_reasons_and_distances(tmp_path: Path) -> None:
    """Original, byte-different copy, half-size copy and a 15 % centre crop: the keeper's
    reason names the crop (not "original colours"), and the HTML says why the crop's
    distance exceeds the threshold."""
    from test_crops import central
    from test_crops import photo as textured
    from test_html_report import embedded_data

    root = tmp_path / "photos"
    root.mkdir()
    picture = textured(41, (640, 480))
    picture.save(root / "original.png")
    picture.save(root / "copy.jpg", quality=90)
    picture.resize((320, 240)).save(root / "small.jpg", quality=90)
    central(picture, 0.15).save(root / "crop.jpg", quality=95)
    db = ["--db", str(tmp_path / "d.sqlite")]
    assert run("index", str(root), *db, "-q").exit_code == 0
    page, out = tmp_path / "r.html", tmp_path / "r.json"
    made = run("report", "--html", str(page), "--json", str(out), "--thumbnails", "0", *db)
    assert made.exit_code == 0, made.output
    [cluster] = json.loads(out.read_text(encoding="utf-8"))["clusters"]
    assert "uncropped (another copy is a cropped copy)" in cluster["reasons"]
    assert not any("colours" in reason for reason in cluster["reasons"])
    data: dict[str, Any] = embedded_data(page.read_text(encoding="utf-8"))
    threshold = data["settings"]["threshold"]
    [shown] = data["clusters"]
    crop = next(m for m in shown["members"] if m["name"] == "crop.jpg")
    assert crop["distance"] > threshold
    assert crop["note"].startswith("cropped copy")
    assert all("note" not in m for m in shown["members"] if m["name"] != "crop.jpg")


def readme_quick_start() -> str:
    """The README's first command (tests/test_docs.py checks its shape)."""
    from test_docs import README, code_blocks

    return code_blocks(README)[0].strip()


def test_the_readme_quick_start_writes_the_report_on_a_library_with_bad_files(
    tmp_path: Path,
) -> None:
    """The quick-start line, from `dedupdb index` on (the install steps are this test run's
    own), in a shell on a library with a truncated JPEG, garbage, an empty file and a text
    file named like a photo: the `&&` chain reaches the report."""
    import os
    import subprocess
    import sys

    command = readme_quick_start()
    steps = command[command.index("dedupdb index") :]
    library_root = tmp_path / "Pictures"
    library(library_root)
    good = (library_root / "Camera" / "000.jpg").read_bytes()
    (library_root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (library_root / "garbage.png").write_bytes(os.urandom(4000))
    (library_root / "empty.jpg").write_bytes(b"")
    (library_root / "notes.jpg").write_text("not a photo", encoding="utf-8")
    steps = steps.replace("~/Pictures", str(library_root))
    html = tmp_path / steps.rsplit(" ", 1)[1]
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        "DEDUPDB_DB": str(tmp_path / "db.sqlite"),
    }
    done = subprocess.run(
        ["bash", "-c", steps], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not be read" in done.stdout and "truncated.jpg" in done.stdout
    assert html.exists() and "dedupdb" in html.read_text(encoding="utf-8")
    assert f"Wrote the HTML report to {html.name}" in done.stdout


def test_a_small_report_loads_no_compiler(tmp_path: Path) -> None:
    """The first report after installing compiles nothing on a small library: numba (and
    its 10-20 s of compiling) is left for searches too large for numpy."""
    import subprocess
    import sys

    root = library(tmp_path / "photos")
    db = str(tmp_path / "d.sqlite")
    assert run("index", str(root), "--db", db, "-q").exit_code == 0
    code = (
        "import sys\n"
        "from dedupdb.cli import main\n"
        f"sys.argv = ['dedupdb', 'report', '--db', {db!r}, '--json', '-']\n"
        "try:\n    main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
        "print('numba loaded:', 'numba' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert '"clusters": [' in done.stdout  # a report with its clusters was made
    assert done.stdout.strip().endswith("numba loaded: False")
