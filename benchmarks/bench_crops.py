"""The cost of finding cropped copies (centre-crop hashes and colours, ``match.crop_candidates``).

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_crops.py [--images 100000] [--repeats 3] [--index-files 40]
        [--thresholds 6,8]

Two measurements:

- report side: a real SQLite database with ``--images`` synthetic rows (those of
  bench_report.py) given random centre-crop hashes (``hashes.CROP_WINDOWS`` per image), a tenth
  of the images planted as crops (their upright pHash within a few bits of another image's
  centre-crop hash); times ``find_pairs`` with ``crops`` off and on, and the crop search alone
  (``crop_candidates``, rows already loaded) over every window and over the four centres a
  database indexed before migration 0008 holds, at each of ``--thresholds``, medians of
  ``--repeats`` runs, wall and CPU seconds;
- index side: per image, the centre-crop hashes and colours against the work the index
  already does on the decoded picture (gray square, the four hashes' 8 variants, signals),
  on the first ``--index-files`` JPEGs of the shared corpus's ``scale/`` folder (camera-size
  photos), medians over the files of the best of 5 timings each.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update

from dedupdb import hashes, signals
from dedupdb.decode import DecodedImage, decode
from dedupdb.hashes import HashParams
from dedupdb.match import CROP_THRESHOLD, MatchOptions, crop_candidates
from dedupdb.report import find_pairs
from dedupdb.search import Candidates
from dedupdb.store import Store, open_store
from dedupdb.store.catalog import LEGACY_WINDOWS, StoredEvidence, load_rows
from dedupdb.store.schema import Image

HERE = Path(__file__).resolve().parent


def _bench_report() -> Any:
    spec = importlib.util.spec_from_file_location("bench_report", HERE / "bench_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_crops(store: Store, seed: int = 2) -> int:
    """Random centre-crop hashes for every row; a tenth of the rows become crops of another row
    (their upright pHash set within 0-4 bits of one of its crop hashes). Returns how many."""
    rng = random.Random(seed)
    params = HashParams()
    with store.engine.connect() as conn:
        ids = [i for (i,) in conn.execute(select(Image.id).order_by(Image.id))]
        phash = dict(conn.execute(select(Image.id, Image.phash)).all())
    planted = 0
    values: dict[int, list[int]] = {}
    for image_id in ids:
        values[image_id] = [rng.getrandbits(64) for _ in hashes.CROP_WINDOWS]
    changed_phash: dict[int, bytes] = {}
    for image_id in rng.sample(ids, len(ids) // 10):
        whole = rng.choice(ids)
        if whole == image_id:
            continue
        window = values[whole][rng.randrange(len(hashes.CROP_WINDOWS))]
        value = window
        for bit in rng.sample(range(64), rng.randint(0, 4)):
            value ^= 1 << bit
        blob = phash[image_id]
        changed_phash[image_id] = value.to_bytes(8, "big") + blob[8:]
        planted += 1
    with store.engine.begin() as conn:
        for image_id, vals in values.items():
            conn.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(
                    crop_phash=hashes.pack_variants(vals, params),
                    crop_colour=bytes(48 * len(hashes.CROP_WINDOWS)),
                    **({"phash": changed_phash[image_id]} if image_id in changed_phash else {}),
                )
            )
    return planted


def report_side(images: int, repeats: int, thresholds: list[int]) -> None:
    bench = _bench_report()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(os.path.join(tmp, "bench.sqlite"))
        bench.populate(store, images)
        planted = add_crops(store)
        print(f"{images:,} rows, {planted:,} planted crops")
        off = MatchOptions(threshold=10, crops=False)
        on = MatchOptions(threshold=10)
        rows = load_rows(store, "phash")
        heads = np.arange(len(rows.ids), dtype=np.int64)
        none = Candidates(*(np.zeros(0, dtype=np.int64) for _ in range(4)))
        # The same rows as a database indexed when only the centre 90/80/70/60 % were stored.
        assert rows.has_crops is not None
        known = rows.has_crops.copy()
        known[:, LEGACY_WINDOWS:] = False
        four = dataclasses.replace(rows, has_crops=known)
        results = []
        for name, fn in (
            ("find_pairs, crops off", lambda: find_pairs(store, off)),
            ("find_pairs, crops on", lambda: find_pairs(store, on)),
            (
                f"crop_candidates alone (search + colours of candidates), {CROP_THRESHOLD} bits",
                lambda: crop_candidates(
                    rows, heads, none, CROP_THRESHOLD, False, StoredEvidence(store)
                ),
            ),
            *(
                (
                    f"crop_candidates, {which} at {bits} bits",
                    lambda rows=table, bits=bits: crop_candidates(
                        rows, heads, none, bits, False, StoredEvidence(store)
                    ),
                )
                for which, table in (
                    ("the 4 centres of migration 0005", four),
                    (f"all {len(hashes.CROP_WINDOWS)} windows", rows),
                )
                for bits in thresholds
                if (which, bits) != (f"all {len(hashes.CROP_WINDOWS)} windows", CROP_THRESHOLD)
            ),
        ):
            (wall, cpu), found = bench.timed(fn, repeats)  # bench_report's, as its tables
            count = len(found) if isinstance(found, list) else len(found[0].a) if found else 0
            results.append((name, wall, cpu, count))
        store.close()
    print(f"\n| {images:,} images | wall s | CPU s | pairs |")
    print("| --- | ---: | ---: | ---: |")
    for name, wall, cpu, count in results:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {count:,} |")


def best(fn: Callable[[], Any], tries: int = 5) -> float:
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _steps(
    content: DecodedImage, luma: np.ndarray, gray: np.ndarray, params: HashParams
) -> dict[str, Callable[[], Any]]:
    def existing() -> None:
        square = hashes.gray_square(luma)
        hashes.all_variants(square, params)
        signals.measure(signals.colour_source(content.picture), square, luma)

    reduced = signals.colour_source(content.picture)  # as the indexer shares it
    return {
        "existing": existing,
        "crop hashes": lambda: hashes.crop_phashes(gray, params.hash_size),
        "crop colours": lambda: signals.crop_colours(reduced, hashes.CROP_WINDOWS),
    }


def index_side(folder: Path, count: int) -> None:
    files = sorted(folder.glob("*.jpg"))[:count]
    if not files:
        print(f"no JPEGs in {folder}: index side skipped")
        return
    params = HashParams()
    rows: dict[str, list[float]] = {k: [] for k in ("existing", "crop hashes", "crop colours")}
    for path in files:
        decoded = decode(path.read_bytes())
        assert isinstance(decoded, DecodedImage)
        content = decoded.content
        luma = content.working_luma
        gray = hashes.gray_square(luma)
        for name, fn in _steps(content, luma, gray, params).items():
            rows[name].append(best(fn))
    base = statistics.median(rows["existing"])
    print(f"\n| per image, {len(files)} camera JPEGs (decoded at reduced scale) | ms | share |")
    print("| --- | ---: | ---: |")
    for name, values in rows.items():
        ms = statistics.median(values) * 1e3
        print(f"| {name} | {ms:.3f} | {statistics.median(values) / base:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--index-files", type=int, default=40)
    parser.add_argument("--scale", type=Path, default=HERE.parent.parent / "corpus" / "scale")
    parser.add_argument(
        "--thresholds",
        default="6,8",
        help="crop thresholds to time the crop search at, comma-separated (default 6,8)",
    )
    args = parser.parse_args()
    index_side(args.scale, args.index_files)
    report_side(args.images, args.repeats, [int(t) for t in args.thresholds.split(",")])
    print(f"\n(load average {os.getloadavg()[0]:.1f}; {sys.platform}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
