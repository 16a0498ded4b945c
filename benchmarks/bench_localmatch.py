"""Cost of the local-feature stage (`index --features`, `report --deep`), side by side with the
plain index and report, on a real corpus (e.g. make_heavy_corpus.py's, or shared/bench's).

    python benchmarks/bench_localmatch.py CORPUS [--repeats 5]

1. Index, per image, one process: ``fingerprint.process_file`` on every file of CORPUS without and
   with ``Task.features`` (read, hash, decode, hashes and signals; plus ORB keypoints, the
   grey thumbnail and text-likeness), interleaved, median pass; CPU time of this process.
2. Report: ``build_report`` without and with ``deep`` on a database of CORPUS indexed with
   ``--features`` (interleaved, median), and the stage's parts: the candidate search and
   the verification per candidate pair, with how many pairs each picture sends to it.
3. A projection to 100,000 pictures from those parts: the verification is linear in the
   candidate pairs (at most ``PARTNERS`` per picture), the search is a sort of every stored
   descriptor (n log n). It is a projection from this corpus, not a measurement at 100,000.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dedupdb import localmatch
from dedupdb.fingerprint import FingerprintSettings, Task, process_file
from dedupdb.indexing import IndexOptions, index
from dedupdb.report import ReportOptions, build_report
from dedupdb.store import catalog, open_store
from dedupdb.store.catalog import load_rows
from dedupdb.walk import FileEntry

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def interleaved(passes: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """CPU seconds of each pass, per repeat, the passes taking turns."""
    out: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, run in passes.items():
            start = cpu()
            run()
            out[name].append(cpu() - start)
    return out


def index_passes(corpus: Path) -> dict[str, Callable[[], None]]:
    files = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in SUFFIXES)
    root = os.fsencode(corpus)

    def run(features: bool) -> Callable[[], None]:
        def go() -> None:
            for path in files:
                st = path.stat()
                entry = FileEntry(
                    os.fsencode(path.relative_to(corpus)), st.st_size, st.st_mtime_ns, 0, 0
                )
                process_file(Task(root, entry, FingerprintSettings(8, 0, features)))

        return go

    return {"index, per image": run(False), "index --features, per image": run(True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = sum(1 for p in args.corpus.rglob("*") if p.suffix.lower() in SUFFIXES)

    interleaved(index_passes(args.corpus), 1)  # warm-up: imports, first calls
    timed = interleaved(index_passes(args.corpus), args.repeats)
    plain = statistics.median(timed["index, per image"]) / files * 1000
    deep = statistics.median(timed["index --features, per image"]) / files * 1000
    print(f"| {files} files, median of {args.repeats} | CPU ms per image |")
    print("|---|---|")
    print(f"| index | {plain:.1f} |")
    print(f"| index --features | {deep:.1f} ({deep / plain:.2f}x) |")

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "bench.sqlite"))
        index(store, args.corpus, IndexOptions(workers=1, features=True, in_process=True))
        reports = interleaved(
            {
                "report": lambda: build_report(store, ReportOptions()) and None,
                "report --deep": lambda: build_report(store, ReportOptions(deep=True)) and None,
            },
            args.repeats,
        )
        rows = load_rows(store, "phash")
        contents = list(dict.fromkeys(rows.content))
        stored = catalog.local_features(store, contents)
        features = [stored[d] for d in contents if d in stored]
        start = time.process_time()
        candidates = localmatch.candidate_pairs(features)
        search = time.process_time() - start
        start = time.process_time()
        for i, j in candidates.tolist():
            localmatch.verify(features[i], features[j])
        verify = (time.process_time() - start) / max(1, len(candidates))
        descriptors = sum(len(f.descriptors) for f in features)
        store.close()
    report_plain = statistics.median(reports["report"])
    report_deep = statistics.median(reports["report --deep"])
    per_picture = len(candidates) / max(1, len(features))
    print()
    print(f"| {len(features)} pictures with features | CPU s (median of {args.repeats}) |")
    print("|---|---|")
    print(f"| report | {report_plain:.2f} |")
    print(f"| report --deep | {report_deep:.2f} ({report_deep / report_plain:.1f}x) |")
    print(f"| candidate search ({descriptors} descriptors) | {search:.3f} |")
    print(
        f"| verification | {verify * 1000:.2f} ms per pair, {per_picture:.1f} pairs per picture |"
    )
    n = 100_000
    scale = n * math.log(n * 256) / (len(features) * math.log(max(2, descriptors)))
    projected = search * scale + n * per_picture * verify
    print(
        f"| projected at {n:,} pictures | search {search * scale:.0f} s + verification "
        f"{n * per_picture * verify:.0f} s = {projected / 60:.0f} min |"
    )


if __name__ == "__main__":
    main()
