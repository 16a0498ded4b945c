"""The index through a real Dask cluster (a LocalCluster of worker processes, which read the
files themselves): the same rows as the local pool, and a worker that dies on a file costs
only that file, recorded with the reason once Dask gives up on it (KilledWorker)."""

from __future__ import annotations

import ctypes
import faulthandler
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

import hostile  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from conftest import photo_files  # noqa: E402
from dask_cluster import local_cluster  # noqa: E402
from sqlalchemy import select  # noqa: E402

from dedupdb.cli import cli  # noqa: E402
from dedupdb.distributed.executor import RUN_FILE, DaskExecutor, index_executor  # noqa: E402
from dedupdb.indexing import IndexOptions, index  # noqa: E402
from dedupdb.pool import Lost  # noqa: E402
from dedupdb.store import Store, open_store  # noqa: E402
from dedupdb.store.schema import Failure, Image  # noqa: E402

CRASH = b"crash.jpg"
# What differs between two runs over the same files: the database's ids and the time.
RUN_COLUMNS = {"id", "root_id", "indexed_at"}


def crash_on_marker(task: Any) -> Any:
    """The per-file function, except that the worker process dies on ``crash.jpg`` as a
    decoder's invalid read kills it (a real segfault, not an exception)."""
    if task.entry.relpath == CRASH:
        faulthandler.disable()
        ctypes.string_at(0)
    return RUN_FILE(task)


def double_but_not_three(value: int) -> int:
    if value == 3:
        raise ValueError("three")
    return 2 * value


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[distributed.Client]:
    # Dask gives up on a task after this many of its workers died (3 by default): 1 here,
    # so that the crashing file kills two workers, not four.
    with local_cluster(
        tmp_path_factory.mktemp("dask"), env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    ) as connected:
        yield connected


def rows(store: Store) -> dict[bytes, dict[str, Any]]:
    with store.session() as session:
        return {
            image.relpath: {
                column.name: getattr(image, column.name)
                for column in Image.__table__.columns
                if column.name not in RUN_COLUMNS
            }
            for image in session.execute(select(Image)).scalars()
        }


def failures(store: Store) -> dict[bytes, tuple[str, str]]:
    with store.session() as session:
        found = session.execute(select(Failure)).scalars()
        return {row.relpath: (row.kind, row.reason) for row in found}


def folder(tmp_path: Path) -> Path:
    """Real photos, two hostile files the decoder refuses, and one that kills its worker."""
    root = tmp_path / "photos"
    photo_files(root, 10, (160, 120))
    (root / "bomb.png").write_bytes(hostile.png_claiming(20000, 20000))
    (root / "truncated.jpg").write_bytes(hostile.encode(hostile.picture(3), "JPEG")[:900])
    (root / CRASH.decode()).write_bytes(hostile.encode(hostile.picture(4), "JPEG"))
    return root


@pytest.mark.slow
def test_index_on_dask_matches_the_local_pool_and_survives_a_dying_worker(
    store: Store, tmp_path: Path, client: distributed.Client
) -> None:
    root = folder(tmp_path)
    local = open_store(tmp_path / "local.sqlite")
    # In this process: a local pool started while the client's threads run would be forked
    # from a fork server, which outlives the test.
    expected = index(local, root, IndexOptions(in_process=True))
    assert (expected.new, expected.failed) == (11, 2)

    with DaskExecutor(client, crash_on_marker) as executor:
        summary = index(store, root, executor=executor)
    assert (summary.new, summary.failed) == (10, 3), summary.failures
    got, want = rows(store), rows(local)
    assert set(got) == set(want) - {CRASH}
    assert all(got[path] == want[path] for path in got)  # every column, bit for bit
    lost = failures(store)
    kind, reason = lost.pop(CRASH)
    assert kind == "failed"
    assert reason.startswith("the decoder crashed: the Dask worker running it died, 2 times")
    assert lost == failures(local)

    # A re-index sends nothing; once the decoder is fixed, --retry-errors indexes the file.
    again = index(store, root, executor=index_executor(client))
    assert (again.new, again.unchanged, again.known_bad) == (0, 10, 3)
    retried = index(store, root, IndexOptions(retry_errors=True), executor=index_executor(client))
    assert (retried.new, retried.failed) == (1, 2)
    assert rows(store)[CRASH] == want[CRASH]
    local.close()


def test_cli_index_on_a_scheduler(
    tmp_path: Path, client: distributed.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    photo_files(root, 4, (160, 120))
    address = client.scheduler.address
    result = CliRunner().invoke(cli, ["index", str(root), "--scheduler", address, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["new"] == 4
    photo_files(tmp_path / "more", 2, (160, 120))
    (tmp_path / "more" / "000.jpg").rename(root / "new.jpg")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)  # as Dask's own tools read it
    result = CliRunner().invoke(cli, ["index", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert (json.loads(result.output)["new"], json.loads(result.output)["unchanged"]) == (1, 4)


def test_results_in_completion_order_and_errors_as_lost(client: distributed.Client) -> None:
    with DaskExecutor(client, double_but_not_three, retries=1) as executor:
        for value in range(6):
            executor.submit(value)
        assert all(isinstance(worker, str) for worker, _, _ in executor.activity())
        answers = dict(executor.results())
        executor.submit(10)  # more work after the first results
        answers.update(executor.results())
    assert answers == {0: 0, 1: 2, 2: 4, 3: Lost(error="ValueError: three"), 4: 8, 5: 10, 10: 20}
