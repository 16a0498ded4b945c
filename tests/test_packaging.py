"""The wheel a user pip-installs carries everything dedupdb needs at run time, the Alembic
migrations above all: without them an installed dedupdb could not create or upgrade a database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-isolation: the build backend (hatchling) comes from the test extra, so this works
    # offline and in a second or two.
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=PROJECT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("dedupdb-*.whl")
    return built


@pytest.mark.slow
def test_wheel_holds_the_package_and_every_migration(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert "dedupdb/_migrations/env.py" in names
    assert "dedupdb/_migrations/script.py.mako" in names
    versions = sorted(p.name for p in (PROJECT / "migrations" / "versions").glob("*.py"))
    assert versions, "no migrations in the source tree"
    for name in versions:
        assert f"dedupdb/_migrations/versions/{name}" in names
    modules = ("__init__", "__main__", "indexing", "store/__init__", "store/schema", "walk")
    for module in (*modules, "cli/__init__", "decode"):
        assert f"dedupdb/{module}.py" in names
    assert "dedupdb/render/templates/report.html.j2" in names  # the HTML report's template
    assert "dedupdb = dedupdb.cli:main" in scripts
    assert b"Requires-Python: >=3.10" in metadata
    assert b"Provides-Extra: heif" in metadata
    # The review UI works offline: its templates and every asset ship in the wheel.
    assert b"Provides-Extra: serve" in metadata
    for asset in ("static/htmx.min.js", "static/htmx-LICENSE.txt", "static/app.js",
                  "static/app.css", "templates/base.html", "templates/cluster.html"):  # fmt: skip
        assert f"dedupdb/web/{asset}" in names
    assert not any(n.startswith(("tests/", "migrations/", "benchmarks/")) for n in names)


@pytest.mark.slow
def test_unpacked_wheel_creates_a_database_with_its_own_migrations(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    database = str(tmp_path / "fresh.sqlite")
    probe = (
        "import json, dedupdb, dedupdb.store as s;"
        f"store = s.open_store({database!r});"
        "print(json.dumps({'file': dedupdb.__file__, 'migrations': str(s.migrations_dir()),"
        " 'version': store.schema_version, 'head': s.head_revision()}))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # not the source tree
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(done.stdout)
    assert found["file"].startswith(str(site))
    assert found["migrations"] == str(site / "dedupdb" / "_migrations")
    assert found["version"] == found["head"]
