"""Speed of the duplicate search, on synthetic rows inserted into a real SQLite database.

    python benchmarks/bench_search.py [--sizes 100000,1000000] [--threshold 10] [--repeat 3]

For each size N a database gets N image rows (``/tmp/dedupdb-bench-N.sqlite``, built once and
reused): 90 % random pictures, 10 % near copies of them (0-8 bits flipped; a third of those
rotated or mirrored, i.e. with their 8 dihedral variants permuted). Hash variants are made as
the 8 symmetries of an 8x8 bit grid, as a rotated picture's hashes are. Colour signatures are
random; thumbnails are left empty (SSIM is not timed).

Printed, as medians of ``--repeat`` runs, wall and CPU seconds:
- ``search``: the exact all-pairs search alone (search.MultiIndex) over the N stored pHash
  values, upright only and rotation-aware (8 variants of each against the upright hashes),
  checked against the brute force on a sample;
- ``pairs+clusters``: ``find_pairs`` + ``build_clusters`` from the database with default options
  (rows read from SQLite, exact groups, search, guards, clustering), at the threshold given and
  at the default one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from dedupdb.cluster import build_clusters
from dedupdb.hashes import DIHEDRAL
from dedupdb.match import MatchOptions, dihedral
from dedupdb.report import find_pairs
from dedupdb.search import MultiIndex, brute_force
from dedupdb.store import HASH_PARAMS_KEY, Store, open_store
from dedupdb.store.catalog import load_rows
from dedupdb.store.schema import Image, Root


def variant_blobs(bits: np.ndarray) -> list[bytes]:
    """(n, 8, 8) bool bit grids -> the stored form: 8 dihedral variants, identity first."""
    variants = np.stack([np.stack([t(g) for t in DIHEDRAL]) for g in bits])  # (n, 8, 8, 8)
    packed = np.packbits(variants.reshape(len(bits), 8, 64), axis=2)  # (n, 8, 8) bytes
    return [row.tobytes() for row in packed]


def synthetic_rows(n: int, rng: np.random.Generator) -> tuple[list[bytes], np.ndarray]:
    """Hash blobs and colour signatures; copies take their source's colours (rotated alike)."""
    copies = n // 10
    bits = rng.random((n, 8, 8)) < 0.5
    colours = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    sources = rng.integers(0, n - copies, copies)
    for i, source in enumerate(sources):
        grid = bits[source].copy().ravel()
        flip = rng.choice(64, size=int(rng.integers(0, 9)), replace=False)
        grid[flip] ^= True
        grid = grid.reshape(8, 8)
        colour = colours[source]
        if i % 3 == 0:
            variant = int(rng.integers(1, 8))
            grid = DIHEDRAL[variant](grid)
            colour = dihedral(colour, variant)
        bits[n - copies + i] = grid
        colours[n - copies + i] = colour
    out: list[bytes] = []
    for start in range(0, n, 50_000):
        out.extend(variant_blobs(bits[start : start + 50_000]))
    return out, colours.reshape(n, 48)


def build_database(path: Path, n: int) -> Store:
    store = open_store(path)
    with store.session() as session:
        have = session.execute(select(Image.id).limit(1)).first() is not None
    if have:
        return store
    rng = np.random.default_rng(n)
    started = time.perf_counter()
    hashes, colours = synthetic_rows(n, rng)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with store.transaction() as session:
        store.set_setting(session, HASH_PARAMS_KEY, {"hash_size": 8, "version": 3})
        root_id = session.execute(
            insert(Root).values(path=b"/bench", display_path="/bench", created_at=now)
        ).inserted_primary_key[0]
        batch: list[dict[str, Any]] = []
        for i in range(n):
            name = f"{i // 1000:04d}/IMG_{i:07d}.jpg"
            batch.append(
                {
                    "root_id": root_id, "relpath": name.encode(), "display_path": name,
                    "status": "present", "size": 3_000_000 + i, "mtime_ns": 1_700_000_000 + i,
                    "device": 1, "inode": i + 1, "content_hash": i.to_bytes(32, "big"),
                    "width": 4000, "height": 3000, "format": "JPEG", "mode": "RGB",
                    "bit_depth": 8, "lossless": False, "frames": 1, "orientation": 1,
                    "taken_at": None, "camera_make": None, "camera_model": None, "exif_tags": 0,
                    "hash_size": 8, "phash": hashes[i], "dhash": hashes[i], "ahash": hashes[i],
                    "whash": hashes[i], "sharpness": 1.0, "low_information": False,
                    "colour": colours[i].tobytes(), "thumb": b"", "indexed_at": now,
                }
            )  # fmt: skip
            if len(batch) == 20_000:
                session.execute(insert(Image), batch)
                batch = []
        if batch:
            session.execute(insert(Image), batch)
    print(f"  built {path} with {n:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    return store


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--threshold", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--skip-clusters-above", type=int, default=200_000)
    parser.add_argument("--report-thresholds", default="", help="more thresholds to time")
    args = parser.parse_args()
    extra = [int(t) for t in args.report_thresholds.split(",") if t]
    print(f"cores: {os.cpu_count()}, threshold {args.threshold}, medians of {args.repeat}")
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, args, extra)


def run_size(n: int, args: argparse.Namespace, extra: list[int]) -> None:
    store = build_database(args.dir / f"dedupdb-bench-{n}.sqlite", n)
    wall, cpu, rows = timed(lambda: load_rows(store, "phash"), 1)
    print(f"N={n:>9,}  load rows from SQLite     {wall:7.2f} s wall {cpu:7.2f} s CPU")
    upright = np.ascontiguousarray(rows.hashes[:, 0, :])
    index = MultiIndex(upright)
    wall, cpu, found = timed(lambda: index.search(None, args.threshold), args.repeat)
    print(f"N={n:>9,}  search, upright           {wall:7.2f} s wall {cpu:7.2f} s CPU"
          f"  {len(found):,} pairs", flush=True)  # fmt: skip
    queries = rows.hashes[:, 1:, :].transpose(1, 0, 2).reshape(-1, upright.shape[1])
    owner = np.tile(np.arange(n, dtype=np.int64), 7)

    def rotated() -> int:
        same = index.search(None, args.threshold)
        other = index.search(queries, args.threshold, owner=owner)
        return len(same) + len(other)

    wall_r, cpu_r, count = timed(rotated, args.repeat)
    print(f"N={n:>9,}  search, rotation-aware    {wall_r:7.2f} s wall {cpu_r:7.2f} s CPU"
          f"  {count:,} matches ({wall_r / wall:.1f}x upright)", flush=True)  # fmt: skip
    sample = upright[:: max(1, n // 2000)]
    check = brute_force(upright, sample, args.threshold).as_set()
    assert MultiIndex(upright).search(sample, args.threshold).as_set() == check
    if n > args.skip_clusters_above:
        return
    for threshold in sorted({args.threshold, MatchOptions().resolved_threshold(), *extra}):
        options = MatchOptions(threshold=threshold)

        def report(options: MatchOptions = options) -> int:
            return len(build_clusters(find_pairs(store, options)))

        wall, cpu, clusters = timed(report, args.repeat)
        print(f"N={n:>9,}  pairs+clusters (t={threshold:>2})    {wall:7.2f} s wall "
              f"{cpu:7.2f} s CPU  {clusters:,} clusters", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
