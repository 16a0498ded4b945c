"""The report with its all-pairs search on a real Dask cluster: the same clusters, keepers and
reasons as on one machine, also when the rows are cut into many blocks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

distributed = pytest.importorskip("distributed")

from conftest import photo, save_photo  # noqa: E402
from dask_cluster import local_cluster  # noqa: E402

from dedupdb.distributed.search import searcher  # noqa: E402
from dedupdb.indexing import IndexOptions, index  # noqa: E402
from dedupdb.render.json_report import to_json  # noqa: E402
from dedupdb.report import ReportOptions, build_report  # noqa: E402
from dedupdb.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[distributed.Client]:
    with local_cluster(tmp_path_factory.mktemp("dask")) as connected:
        yield connected


def library(root: Path) -> Path:
    """Twelve pictures, each with copies a report must find (resized, turned, mirrored,
    recompressed, cropped), and unrelated pictures between them."""
    for seed in range(12):
        picture = photo(seed)
        folder = root / f"set{seed:02d}"
        save_photo(folder / "original.png", seed)
        picture.resize((240, 180)).save(folder / "small.jpg", quality=80)
        if seed % 3 == 0:
            picture.transpose(Image.Transpose.ROTATE_90).save(folder / "turned.jpg", quality=90)
        if seed % 3 == 1:
            picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirror.jpg")
        if seed % 4 == 0:
            picture.crop((20, 15, 300, 225)).save(folder / "crop.jpg", quality=92)
    for seed in range(100, 106):
        save_photo(root / "others" / f"{seed}.jpg", seed)
    return root


def document(store: Store, **kwargs: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(to_json(build_report(store, ReportOptions(), **kwargs)))
    data.pop("generated_at", None)
    return data


@pytest.mark.slow
def test_report_on_the_cluster_equals_the_local_report(
    store: Store, tmp_path: Path, client: distributed.Client
) -> None:
    index(store, library(tmp_path / "photos"), IndexOptions(in_process=True))
    local = document(store)
    assert len(local["clusters"]) >= 12
    assert any(p["transform"] != "identity" for c in local["clusters"] for p in c["pairs"])
    # Blocks of 5 rows: about 36 block pairs, so pairs are found across tasks and merged.
    with distributed.get_task_stream(client) as stream:
        on_cluster = document(store, searcher=searcher(client, block_rows=5))
    assert on_cluster == local
    tasks = [t["key"] for t in stream.data if "search_block_pair" in str(t["key"])]
    assert len(tasks) > 20, stream.data  # the search ran there, partitioned


@pytest.mark.slow
def test_cli_report_on_a_scheduler(tmp_path: Path, client: distributed.Client) -> None:
    root = library(tmp_path / "photos")
    db = str(tmp_path / "cli.sqlite")
    # Every command in its own process, as a user runs it: a local pool started here while the
    # client's threads run would fork its workers from a fork server that outlives the test.
    dedupdb = [sys.executable, "-m", "dedupdb"]
    subprocess.run([*dedupdb, "index", str(root), "--db", db, "--quiet"], check=True)
    reports = {}
    # The command in its own process, as a user runs it (its client is nobody's default, and
    # Dask's threads stay out of this process).
    for name, extra in (("local", []), ("cluster", ["--scheduler", client.scheduler.address])):
        out = tmp_path / f"{name}.json"
        command = [sys.executable, "-m", "dedupdb", "report", "--db", db, "--json", str(out)]
        result = subprocess.run([*command, "--quiet", *extra], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads(out.read_text())
        reports[name].pop("generated_at")
    assert reports["cluster"] == reports["local"]
    assert reports["local"]["clusters"]


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    db = str(tmp_path / "none.sqlite")
    root = tmp_path / "photos"
    save_photo(root / "a.jpg", 1)
    command = [sys.executable, "-m", "dedupdb", "index", str(root), "--db", db, "--quiet"]
    subprocess.run(command, check=True)  # not here: this module's cluster client runs threads
    # In its own process: a client that never connected leaves Dask's threads behind, and the
    # other tests need this process to have one thread (the index forks its workers then).
    command = [sys.executable, "-m", "dedupdb", "report", "--db", db, "--quiet"]
    result = subprocess.run(
        [*command, "--scheduler", "tcp://127.0.0.1:9"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
