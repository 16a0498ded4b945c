"""Index throughput through Dask workers against the local pool, on the same folder.

    python benchmarks/bench_distributed_index.py [--files 400] [--dask-workers 1,2,4]

A folder of ``--files`` JPEG photos (1024x768, textured, made once in /tmp) is indexed into
a fresh SQLite database by: the local pool with 1 and 2 processes, then a Dask LocalCluster
of 1, 2 and 4 worker processes of one thread each (``distributed.executor.index_executor``).
Each cluster first indexes a few other files, so that its workers have loaded the decode
code (a long-lived cluster has). Printed: seconds, files/s, and the overhead per file against
the local pool with as many processes (1 Dask worker against 1 process: what a file costs
to go through the scheduler).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster
from PIL import Image, ImageDraw

from dedupdb.distributed.executor import index_executor
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import open_store


def photo(seed: int, size: tuple[int, int] = (1024, 768)) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = size
    noise = rng.normal(128, 40, (height // 8, width // 8, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(noise, "RGB").resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(20):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        box = (x, y, x + rng.uniform(20, 400), y + rng.uniform(20, 300))
        draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def folder(path: Path, count: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = path / f"{i:05d}.jpg"
        if not target.exists():
            photo(i).save(target, quality=90)
    return path


def timed_run(root: Path, **kwargs: object) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.sqlite")
        started = time.perf_counter()
        summary = index(store, root, **kwargs)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        store.close()
    assert summary.failed == 0, summary.failures
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--dask-workers", default="1,2,4")
    args = parser.parse_args()
    root = folder(Path(f"/tmp/dedupdb-bench-dask-{args.files}"), args.files)
    warm = folder(Path("/tmp/dedupdb-bench-dask-warm"), 8)
    local: dict[int, float] = {}
    for processes in (1, 2):  # before any Dask client: the pool forks only from one thread
        local[processes] = timed_run(root, options=IndexOptions(workers=processes))
        print(f"local pool, {processes} process(es): {local[processes]:.1f} s, "
              f"{args.files / local[processes]:.1f} files/s", flush=True)  # fmt: skip
    for workers in (int(w) for w in args.dask_workers.split(",")):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            timed_run(warm, executor=index_executor(client))
            seconds = timed_run(root, executor=index_executor(client))
        line = f"dask, {workers} worker(s): {seconds:.1f} s, {args.files / seconds:.1f} files/s"
        same = local.get(workers)
        if same is not None:
            line += f", overhead {1000 * (seconds - same) / args.files:+.1f} ms/file"
        print(line, flush=True)
    print(f"(cores available: {len(os.sched_getaffinity(0))})")


if __name__ == "__main__":
    main()
