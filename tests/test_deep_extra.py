"""Without the [deep] extra (OpenCV), `index --features` and `report --deep` say which extra
to install, once, before anything runs: not a failure per file, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dedupdb.cli import cli


@pytest.fixture
def no_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if opencv-python-headless were absent


def photos(root: Path) -> Path:
    root.mkdir()
    for seed in range(2):
        noise = np.random.default_rng(seed).integers(0, 256, (150, 200, 3), dtype=np.uint8)
        Image.fromarray(noise).save(root / f"p{seed}.jpg", quality=90)
    return root


def test_index_features_without_opencv_names_the_extra(
    tmp_path: Path, db_path: Path, no_opencv: None
) -> None:
    root = photos(tmp_path / "photos")
    result = CliRunner().invoke(cli, ["index", str(root), "--features", "--db", str(db_path)])
    assert result.exit_code == 1, result.output
    assert "pip install 'dedupdb[deep]'" in result.output
    assert "Traceback" not in result.output


def test_report_deep_without_opencv_names_the_extra(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = photos(tmp_path / "photos")
    indexed = CliRunner().invoke(cli, ["index", str(root), "-q", "--db", str(db_path)])
    assert indexed.exit_code == 0, indexed.output
    monkeypatch.setitem(sys.modules, "cv2", None)
    result = CliRunner().invoke(cli, ["report", "--deep", "--db", str(db_path)])
    assert result.exit_code == 1, result.output
    assert "pip install 'dedupdb[deep]'" in result.output
