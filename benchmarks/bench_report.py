"""Report speed: ``dedupdb report`` over a large synthetic database (thumbnails aside).

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_report.py [--images 100000] [--repeats 3]

Builds a real SQLite database with ``--images`` synthetic image rows (random 64-bit pHashes
with their 8 dihedral variants and 17 crop-window pHashes, as ``dedupdb index`` stores them; a
third of the images are near copies, in groups of 2-3 within a few bits of each other, a tenth
of those byte-identical), then times, median of ``--repeats`` runs:

- ``find_clusters``: the matching stage (search + clustering);
- ``rank + assemble``: ``report_from_clusters`` (loading the members' rows, keeper ranking,
  distances to the keeper);
- ``JSON``: ``to_json`` of the whole report;
- ``build_report``: the whole library call (matching included), what ``dedupdb report --json``
  does before writing;
- ``build_report + JSON``: both, what ``dedupdb report --json`` does (the issue's goal).

Prints a markdown table (the README's report benchmark).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import insert

from dedupdb.hashes import CROP_WINDOWS, HashParams, pack_variants
from dedupdb.match import MatchOptions
from dedupdb.render.json_report import to_json
from dedupdb.report import ReportOptions, build_report, find_clusters, report_from_clusters
from dedupdb.signals import DCT_BLOCKS
from dedupdb.store import HASH_PARAMS_KEY, Store, open_store
from dedupdb.store.schema import PRESENT, Image, Root

DIHEDRAL_OF_BITS = 8


def _variants(value: int, rng: random.Random) -> list[int]:
    # Synthetic: the identity hash and 7 unrelated values stand in for the rotations.
    return [value, *(rng.getrandbits(64) for _ in range(DIHEDRAL_OF_BITS - 1))]


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


def populate(
    store: Store, images: int, seed: int = 1, crops: bool = True, lossless: float = 0.0
) -> list[list[int]]:
    """Insert the rows; return the planted near-copy groups (image ids). ``crops`` False
    leaves the centre-crop hashes out (a database indexed before they existed). Every JPEG
    row has a luma quantization table; in ``lossless`` of the near-copy groups the second
    member is a PNG of the first's size with a DCT sample (a conversion candidate the report
    tests, see quality.conversion)."""
    rng = random.Random(seed)
    crop_rng = random.Random(seed + 1)  # its own stream: the other rows are those of old runs
    extra_rng = random.Random(seed + 2)  # and this one: the rows of runs before conversions
    quant = bytes(range(2, 66))
    sample = np.random.default_rng(seed).integers(-800, 800, DCT_BLOCKS * 64).astype(">i2")
    params = HashParams()
    now = datetime(2026, 1, 1)
    with store.transaction() as session:
        store.set_setting(session, HASH_PARAMS_KEY, {"hash_size": 8, "version": 2})
        session.add(Root(id=1, path=b"/bench/photos", display_path="/bench/photos", created_at=now))
    groups: list[list[int]] = []
    rows: list[dict[str, Any]] = []
    image_id = 0
    while image_id < images:
        base = rng.getrandbits(64)
        size = 1 if rng.random() < 2 / 3 else rng.choice((2, 2, 3))
        size = min(size, images - image_id)
        content = rng.randbytes(32)
        centres = [crop_rng.getrandbits(64) for _ in CROP_WINDOWS]
        group = []
        converted = size > 1 and extra_rng.random() < lossless
        for k in range(size):
            image_id += 1
            png = converted and k == 1
            value = base if k == 0 else _flip(base, rng.randint(0, 4), rng)
            exact = k > 0 and rng.random() < 0.1
            blob = pack_variants(_variants(value, rng), params)
            crop_values = [_flip(c, crop_rng.randint(0, 4), crop_rng) for c in centres]
            crop_blob = pack_variants(crop_values, params) if crops else None
            rows.append(
                {
                    "id": image_id,
                    "root_id": 1,
                    "relpath": f"{image_id // 1000:04d}/IMG_{image_id:07d}.jpg".encode(),
                    "display_path": f"{image_id // 1000:04d}/IMG_{image_id:07d}.jpg",
                    "status": PRESENT,
                    "size": rng.randint(500_000, 5_000_000),
                    "mtime_ns": rng.randint(1, 10**18),
                    "device": 1,
                    "inode": image_id,
                    "content_hash": content if exact else rng.randbytes(32),
                    "width": 4000 if png else 4000 // (k + 1),
                    "height": 3000 if png else 3000 // (k + 1),
                    "format": "PNG" if png else "JPEG",
                    "mode": "RGB",
                    "bit_depth": 8,
                    "lossless": png,
                    "jpeg_quant": None if png else quant,
                    "dct_sample": sample.tobytes() if png else None,
                    "frames": 1,
                    "orientation": 1,
                    "taken_at": None,
                    "camera_make": None,
                    "camera_model": None,
                    "exif_tags": rng.randint(0, 60),
                    "hash_size": 8,
                    "phash": blob,
                    "dhash": blob,
                    "ahash": blob,
                    "whash": blob,
                    "crop_phash": crop_blob,
                    "sharpness": rng.uniform(1, 100),
                    "low_information": False,
                    "colour": bytes(48),
                    "thumb": bytes(1024),
                    "indexed_at": now,
                }
            )
            group.append(image_id)
        if size > 1:
            groups.append(group)
        if len(rows) >= 10_000:
            with store.transaction() as session:
                session.execute(insert(Image), rows)
            rows = []
    if rows:
        with store.transaction() as session:
            session.execute(insert(Image), rows)
    return groups


class _Cluster:
    """A planted group as a cluster (``report.ClusterLike``), for benchmarks that time the
    report's assembly without matching (bench_serve)."""

    def __init__(self, members: list[int]) -> None:
        self.members = members
        self.exact = False
        self.max_distance = 4
        self.pairs: list[Any] = []


def timed(fn: Callable[[], Any], repeats: int) -> tuple[tuple[float, float], Any]:
    """Median wall-clock and CPU seconds (this process): on a machine shared with other
    work the CPU figure is the steadier one."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        result = None  # free the previous run's result outside the timed part
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-crops", action="store_true", help="rows without centre-crop hashes (no crop search)"
    )
    parser.add_argument(
        "--lossless",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of near-copy groups holding a same-size PNG (a conversion candidate)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(os.path.join(tmp, "bench.sqlite"))
        start = time.perf_counter()
        groups = populate(store, args.images, crops=not args.no_crops, lossless=args.lossless)
        print(f"inserted {args.images:,} rows in {time.perf_counter() - start:.1f} s; "
              f"{len(groups):,} planted groups; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores")  # fmt: skip
        options = ReportOptions(threshold=10)
        results: list[tuple[str, tuple[float, float], str]] = []
        seconds, clusters = timed(
            lambda: find_clusters(store, MatchOptions(threshold=10)), args.repeats
        )
        results.append(("find_clusters", seconds, f"{len(clusters):,} clusters"))
        seconds, report = timed(
            lambda: report_from_clusters(store, clusters, options, threshold=10), args.repeats
        )
        results.append(("rank + assemble", seconds, f"{report.summary.clusters:,} clusters"))
        seconds, text = timed(lambda: to_json(report), args.repeats)
        results.append(("JSON", seconds, f"{len(text) / 1e6:,.1f} MB"))
        seconds, whole = timed(lambda: build_report(store, options), args.repeats)
        results.append(("build_report (all of it)", seconds, f"{whole.summary.clusters:,}"))
        seconds, text = timed(lambda: to_json(build_report(store, options)), args.repeats)
        results.append(("build_report + JSON", seconds, f"{len(text) / 1e6:,.1f} MB"))
        store.close()
    print(f"\n| stage, {args.images:,} images | wall s | CPU s | output |")
    print("| --- | ---: | ---: | --- |")
    for name, (wall, cpu), note in results:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {note} |")
    print(f"\n(medians of {args.repeats} runs; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
