"""Shared fixtures: a database in tmp_path (never the user's), and real photo files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# PostgreSQL: a throwaway server for the tests that need one (see pgserver.py).
from pgserver import (  # noqa: F401  (fixtures)
    _migrated_template,
    add_postgresql_options,
    migrated_postgresql_url,
    postgresql_server,
    postgresql_url,
)
from PIL import Image

from dedupdb.store import Store, open_store

# Property tests judge results, never time: Hypothesis's per-example deadline and its "too slow"
# health check would fail them on a shared, loaded machine (a run at load 9 did). Speed is
# measured in benchmarks/.
settings.register_profile("dedupdb", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dedupdb")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_postgresql_options(parser)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--backend postgresql``, skip the tests marked ``sqlite_only`` with their reason
    (what they test exists on SQLite only, such as copying the database file)."""
    if config.getoption("--backend") != "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else "SQLite only"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


@pytest.fixture(autouse=True)
def _isolated_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the user's real database."""
    monkeypatch.setenv("DEDUPDB_DB", str(tmp_path / "default.sqlite"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.sqlite"


@pytest.fixture
def store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Store]:
    """An open database: SQLite in tmp_path, or with ``--backend postgresql`` a new database
    on the test PostgreSQL server (so any store test can be run on both)."""
    if request.config.getoption("--backend") == "postgresql":
        url = request.getfixturevalue("migrated_postgresql_url")
        request.getfixturevalue("monkeypatch").setenv("DEDUPDB_DB", url)  # the CLI's default too
        opened = open_store(url)
    else:
        opened = open_store(db_path)
    yield opened
    opened.close()


def photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A deterministic photo-like picture: smooth shapes and gradients plus a little noise,
    so that each seed is a clearly different picture to perceptual hashes."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for _ in range(3):
        field = np.zeros((height, width))
        for _ in range(6):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            radius = rng.uniform(0.1, 0.5) * max(width, height)
            field += rng.uniform(-1, 1) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / radius**2)
        field += rng.uniform(-1, 1) * x / width + rng.uniform(-1, 1) * y / height
        channels.append(field)
    arr = np.stack(channels, axis=-1)
    arr = (arr - arr.min()) / (np.ptp(arr) or 1.0) * 230 + 10
    arr += rng.normal(0, 3, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def save_photo(path: Path, seed: int, size: tuple[int, int] = (320, 240), **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    photo(seed, size).save(path, **kwargs)
    return path


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    """A small library: 6 different JPEGs and PNGs in nested folders."""
    root = tmp_path / "photos"
    save_photo(root / "2024" / "beach.jpg", 1, quality=90)
    save_photo(root / "2024" / "forest.jpg", 2, quality=90)
    save_photo(root / "2024" / "trip" / "city.png", 3)
    save_photo(root / "2025" / "snow.jpg", 4, (400, 300), quality=85)
    save_photo(root / "2025" / "desert.webp", 5)
    save_photo(root / "cat.jpg", 6, (240, 320), quality=95)
    return root


def quick_photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Like ``photo`` but about 10x faster at large sizes (drawn small, then upscaled): for
    tests that need many files rather than particular pictures."""
    width, height = size
    small = photo(seed, (max(8, width // 8), max(8, height // 8)))
    return small.resize(size, Image.Resampling.BICUBIC)


def photo_files(folder: Path, count: int, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """``count`` different JPEGs in ``folder`` (named 000.jpg, 001.jpg, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        path = folder / f"{seed:03d}.jpg"
        quick_photo(seed + 1000, size).save(path, quality=85)
        paths.append(path)
    return paths


def count_image_rows(db: Path) -> int:
    """Rows committed to the images table of a SQLite file a running process is writing (0 before
    the table exists): how far a run in a subprocess has got."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM images").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, ended but not yet reaped, does not); Linux only."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
