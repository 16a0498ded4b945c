"""`dedupdb report` on the command line: outputs, the terminal summary, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dedupdb.cli import cli
from dedupdb.index import IndexOptions, index
from dedupdb.store import Store


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_report_on_an_empty_database(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = run(
        "report", "--db", str(db_path), "--html", f"{out}.html", "--json", f"{out}.json",
        "--csv", f"{out}.csv",
    )  # fmt: skip
    assert code == 0, text
    assert "clusters             0" in text
    assert "Nothing indexed yet" in text
    assert f"Wrote the HTML report to {out}.html" in text
    data = json.loads(Path(f"{out}.json").read_text())
    assert data["summary"]["clusters"] == 0
    assert Path(f"{out}.csv").read_text().startswith("cluster,exact,")
    assert "No duplicates found" in Path(f"{out}.html").read_text()


def test_report_json_to_stdout_is_only_json(db_path: Path) -> None:
    code, text = run("report", "--db", str(db_path), "--json", "-")
    assert code == 0
    assert json.loads(text)["schema"] == "dedupdb-report"


def test_report_with_errors_only(db_path: Path, tmp_path: Path, store: Store) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    index(store, root, IndexOptions(workers=1))
    code, text = run("report", "--db", str(db_path))
    assert code == 0, text
    assert "1 files could not be indexed" in text


def test_unwritable_output_is_one_clear_line(db_path: Path, tmp_path: Path) -> None:
    code, text = run("report", "--db", str(db_path), "--json", str(tmp_path / "no" / "r.json"))
    assert code == 1
    assert "cannot write" in text
    assert "Traceback" not in text


def test_bad_options_are_usage_errors(db_path: Path) -> None:
    assert run("report", "--db", str(db_path), "--hash", "md5")[0] == 2
    assert run("report", "--db", str(db_path), "--ssim", "3")[0] == 2
    assert run("report", "--db", str(db_path), "--threshold", "-1")[0] == 2


def test_help_has_examples() -> None:
    for command in ("report", "not-duplicate"):
        code, text = run(command, "--help")
        assert code == 0
        assert "Examples:" in text
