"""What the fine-hash guard against look-alike layouts costs (issue 16, docs/matching.md).

    python benchmarks/bench_lookalike.py DB [--corpus DIR] [--repeats 5]

1. Index, per image (with ``--corpus``): the fingerprint of each file with and without
   ``finehash.compute``, interleaved (A, B, A, B, ...), CPU time, medians of the passes.
2. Report, per candidate pair: ``match.fine_guard`` over the default matcher's candidate
   pairs of the indexed database DB (every full-frame candidate, the guards off), the fine
   hashes read through ``StoredEvidence`` as a report reads them, CPU time, median of the
   repeats; split into the pairs it judges (both pictures text-like or on a flat background:
   the coefficient comparison runs) and the others (only their stored header is looked at).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from dedupdb import finehash
from dedupdb.fingerprint import compute
from dedupdb.match import LOOKALIKE_FLAT, LOOKALIKE_TEXT, MatchOptions, fine_guard
from dedupdb.search import all_pairs, merge
from dedupdb.store import catalog, open_store
from dedupdb.store.catalog import StoredEvidence


def index_cost(corpus: Path, repeats: int, limit: int) -> None:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".json")[:limit]
    compute.warm_up()
    real = finehash.compute
    passes: dict[str, list[float]] = {"without": [], "with": []}
    try:
        for _ in range(repeats):
            for name in passes:
                compute.finehash.compute = real if name == "with" else (lambda luma: b"")  # type: ignore[assignment]
                start = time.process_time()
                for path in files:
                    compute.fingerprint_path(path)
                passes[name].append((time.process_time() - start) / len(files) * 1e3)
    finally:
        compute.finehash.compute = real  # type: ignore[assignment]
    before, after = (statistics.median(passes[k]) for k in ("without", "with"))
    print(f"index, {len(files)} files of {corpus}, CPU ms per image (median of {repeats}):")
    print(f"  without the fine hash {before:.2f}, with it {after:.2f} ({after / before:.3f}x)")


def report_cost(db: str, repeats: int) -> None:
    store = open_store(db)
    rows = catalog.load_rows(store, "phash", "dhash")
    assert rows.second is not None
    options = MatchOptions()
    found = all_pairs(rows.hashes, options.resolved_threshold(rows.hash_size), True)
    more = all_pairs(rows.second, options.resolved_second(rows.hash_size)[1], True)  # type: ignore[index]
    found = merge(found, more, rows.hashes)
    kind = np.zeros(len(found.a), dtype=np.int8)
    level = np.full(len(found.a), -1, dtype=np.int64)
    evidence = StoredEvidence(store)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fine_guard(rows, found, kind, level, evidence)
        times.append(time.process_time() - start)
    stored = catalog.fine_hashes(store, rows.ids.tolist())
    fine = {i: finehash.unpack(b) for i, b in stored.items()}
    judged = 0
    for a, b in zip(found.a.tolist(), found.b.tolist(), strict=True):
        x, y = fine.get(int(rows.ids[a])), fine.get(int(rows.ids[b]))
        if x is not None and y is not None:
            judged += min(x.text, y.text) >= LOOKALIKE_TEXT or min(x.flat, y.flat) >= LOOKALIKE_FLAT
    per_pair = statistics.median(times) / max(1, len(found.a)) * 1e6
    print(f"report, {db}: {len(rows.ids)} images, {len(found.a)} candidate pairs, {judged} judged")
    print(f"  fine_guard CPU {statistics.median(times) * 1e3:.1f} ms, {per_pair:.1f} us per pair")
    # The judged pairs alone: the comparison, without the read.
    sample = [f for f in fine.values() if f is not None][:2]
    if len(sample) == 2:
        first, second = sample
        start = time.process_time()
        for variant in range(8000):
            turned = finehash.aligned(first.coefficients, variant % 8)
            finehash.disagreement(turned, second.coefficients)
        each = (time.process_time() - start) / 8000 * 1e6
        print(f"  one judged pair's comparison (aligned + disagreement): {each:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=300, help="files of the corpus timed")
    args = parser.parse_args()
    if args.corpus is not None:
        index_cost(args.corpus, args.repeats, args.limit)
    report_cost(args.db, args.repeats)


if __name__ == "__main__":
    main()
