"""A real Dask cluster for the tests, as it is deployed: a ``dask scheduler`` process and a
``dask worker`` process whose nanny runs worker processes of one thread each (what
``LocalCluster(processes=True, threads_per_worker=1)`` makes, but outside the test process,
so that no process or thread of Dask's outlives the cluster in it: other tests count the
test process's children and threads)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import distributed
import distributed.utils

TESTS = Path(__file__).parent
START_TIMEOUT_S = 120.0


@contextlib.contextmanager
def local_cluster(
    tmp: Path, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[distributed.Client]:
    """A client of a new cluster of ``workers`` worker processes. ``env``: more environment
    for the scheduler and workers (Dask reads its settings there: ``DASK_DISTRIBUTED__...``).
    The workers can import the tests' modules (functions a test sends them)."""
    address_file = tmp / "scheduler.json"
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    dask = [sys.executable, "-m", "dask"]
    processes = [
        subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(address_file),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        _wait_for(address_file)
        processes.append(
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    "--scheduler-file",
                    str(address_file),
                    "--nworkers",
                    str(workers),
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        # Not the process's default client, as none is in the command (``distributed.connect``):
        # code that only works with a default client fails here too.
        with distributed.Client(scheduler_file=str(address_file), set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
            yield client
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _stop_offload_thread()


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not path.exists() or not path.stat().st_size:
        if time.monotonic() > deadline:
            raise TimeoutError("the Dask scheduler did not start")
        time.sleep(0.1)


def _stop_offload_thread() -> None:
    """distributed keeps one thread for the whole process once a client has used it (a
    module-level executor). Other tests in the session need a process of one thread (the
    index forks its workers only then: ``workers._pool_context``), so it is stopped and
    replaced by an executor that starts its thread only when next used."""
    distributed.utils._offload_executor.shutdown(wait=True)
    distributed.utils._offload_executor = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="Dask-Offload"
    )
