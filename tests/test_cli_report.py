"""`dedupdb report` on the command line: outputs, the terminal summary, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import Store, open_store


@pytest.fixture
def db_path(db_path: Path) -> Path:
    """The test database, created (only `dedupdb index` makes one where there is none)."""
    open_store(db_path).close()
    return db_path


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


def test_report_with_errors_only(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    index(store, root, IndexOptions(workers=1))
    code, text = run("report", "--db", store.url)
    assert code == 0, text
    assert "1 file could not be indexed" in text


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


def test_report_end_to_end_on_real_files(tmp_path: Path, store: Store) -> None:
    """Index real files and report: exact copies, a resized copy, a different picture."""
    import shutil

    from conftest import photo, save_photo

    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    save_photo(root / "a" / "one.jpg", 41, (480, 360), quality=92)
    shutil.copy(root / "a" / "one.jpg", root / "b" / "one (1).jpg")
    photo(42, (480, 360)).save(root / "a" / "two.png")
    photo(42, (480, 360)).resize((240, 180)).save(root / "b" / "two_small.jpg", quality=80)
    save_photo(root / "a" / "other.jpg", 43, (480, 360), quality=90)
    index(store, root, IndexOptions(workers=1))
    html = tmp_path / "r.html"
    code, text = run("report", "--db", store.url, "--json", "-", "--html", str(html))
    assert code == 0, text
    data = json.loads(text)
    clusters = {frozenset(Path(m["path"]).name for m in c["members"]): c for c in data["clusters"]}
    exact = clusters[frozenset({"one.jpg", "one (1).jpg"})]
    assert exact["exact"] is True
    assert [m["path"] for m in exact["members"] if m["keeper"]] == [str(root / "a" / "one.jpg")]
    near = clusters[frozenset({"two.png", "two_small.jpg"})]
    assert near["exact"] is False
    assert near["members"][0]["path"] == str(root / "a" / "two.png")
    assert near["reasons"][0] == "largest: 480x360 vs 240x180"
    assert not any("other.jpg" in names for names in clusters)
    assert data["settings"]["threshold"] == 10  # the default, resolved
    page = html.read_text()
    assert page.count("data:image/jpeg;base64,") >= 2


def test_report_keeps_pages_of_one_template_apart_and_a_page_with_its_copies(
    db_path: Path, tmp_path: Path
) -> None:
    """`dedupdb index` + `dedupdb report` with defaults: two pages of one letter template are
    two pictures, not copies (the fine-hash guard); a page's re-saved, smaller and turned
    copies are one cluster with it."""
    from lookalikes import letter_page
    from PIL import Image

    folder = tmp_path / "scans"
    folder.mkdir()
    letter_page(1).save(folder / "page1.png")
    letter_page(3).save(folder / "page3.png")
    letter_page(1).save(folder / "page1_q50.jpg", quality=50)
    letter_page(1).resize((372, 526), Image.Resampling.LANCZOS).save(folder / "small.jpg")
    letter_page(1).transpose(Image.Transpose.ROTATE_270).save(folder / "turned.png")
    code, text = run("index", str(folder), "--db", str(db_path), "--workers", "1", "--quiet")
    assert code == 0, text
    code, text = run("report", "--db", str(db_path), "--json", "-", "--quiet")
    assert code == 0, text
    clusters = [
        sorted(Path(m["path"]).name for m in c["members"]) for c in json.loads(text)["clusters"]
    ]
    assert clusters == [["page1.png", "page1_q50.jpg", "small.jpg", "turned.png"]]
