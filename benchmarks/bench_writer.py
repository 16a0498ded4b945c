"""Rows per second one index writer commits, on SQLite and on a real PostgreSQL server.

    python benchmarks/bench_writer.py [--rows N] [--repeats R] [--image FILE]

The index commits each file's row in its own transaction, so that a run killed at any moment
keeps every file written before it (one file, one checkpoint): how many rows a second one
writer sustains bounds how fast any number of workers, local or on a Dask cluster, can index.
One real picture is fingerprinted once; its record is written N times under new paths and
content hashes through ``store.images.ImageWriter.write_fingerprint``, the index's own write
path (on SQLite its driver fast path, on PostgreSQL SQLAlchemy Core). PostgreSQL is a
throwaway server started with Debian's binaries (``tests/pgserver.py``, as the test suite
does), on this machine over TCP: a remote server adds its round trip to every commit.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pgserver import server_binaries, throwaway_cluster  # noqa: E402

from dedupdb.fingerprint import Fingerprint, fingerprint_path  # noqa: E402
from dedupdb.store import Store, open_store  # noqa: E402
from dedupdb.store.images import ImageWriter, ensure_root  # noqa: E402
from dedupdb.walk import FileEntry  # noqa: E402


def write_rows(store: Store, record: Fingerprint, rows: int, run: int) -> tuple[float, float]:
    """Wall and CPU seconds (this process) to commit ``rows`` new rows, one transaction each."""
    root_id = ensure_root(store, f"/bench/run{run}".encode())
    writer = ImageWriter(store, root_id, frozenset(), frozenset())
    records = [
        record._replace(content_hash=hashlib.blake2b(f"{run}/{i}".encode()).digest()[:32])
        for i in range(rows)
    ]
    entries = [FileEntry(f"{i:08d}.jpg".encode(), 1000 + i, i, 1, i) for i in range(rows)]
    wall, cpu = time.perf_counter(), time.process_time()
    for entry, one in zip(entries, records, strict=True):
        writer.write_fingerprint(entry, one)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(name: str, store: Store, record: Fingerprint, rows: int, repeats: int) -> None:
    results = [write_rows(store, record, rows, run) for run in range(repeats)]
    wall = statistics.median(r[0] for r in results)
    cpu = statistics.median(r[1] for r in results)
    print(f"| {name} | {rows / wall:,.0f} | {1000 * wall / rows:.2f} | {1000 * cpu / rows:.2f} |")


def with_postgresql(action: Callable[[Store], None]) -> None:
    bindir = server_binaries()
    if bindir is None:
        print("| postgresql | (no server binaries: apt-get install postgresql) | | |")
        return
    with throwaway_cluster(bindir) as server:
        server.execute("CREATE DATABASE bench")
        store = open_store(server.url_for("bench"))
        try:
            action(store)
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image", type=Path, default=None, help="the picture to fingerprint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = args.image
        if image is None:
            from PIL import Image

            image = Path(tmp) / "photo.jpg"
            Image.effect_mandelbrot((1024, 768), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(image)
        record = fingerprint_path(image)
        assert isinstance(record, Fingerprint), record
        print(f"{args.rows:,} rows, one transaction each, median of {args.repeats}\n")
        print("| database | rows/s | ms per row, wall | ms per row, writer CPU |")
        print("| --- | ---: | ---: | ---: |")
        sqlite = open_store(Path(tmp) / "bench.sqlite")
        measure("SQLite (WAL, one file)", sqlite, record, args.rows, args.repeats)
        sqlite.close()
        with_postgresql(
            lambda store: measure(
                "PostgreSQL (local server, TCP)", store, record, args.rows, args.repeats
            )
        )


if __name__ == "__main__":
    main()
