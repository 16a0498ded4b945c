"""Cost of the inner pictures (``dedupdb.inner``: the picture inside a screenshot), at index
time and at report time, on a real corpus (e.g. make_heavy_corpus.py's, or shared/bench's).

    python benchmarks/bench_inner.py CORPUS [--repeats 5]

1. Index, per image, one process: ``fingerprint.process_file`` on every file of CORPUS, with
   the inner picture looked for (as indexing does) and with ``inner.measure`` replaced by
   "none found" (what indexing cost before), interleaved, median pass; CPU time of this
   process. Also how many files show an inner picture.
2. Report: ``match.match_rows`` on the corpus's rows with and without ``MatchOptions.inner``
   (the inner search, its colour guard and the veto), interleaved, median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from dedupdb import inner
from dedupdb.fingerprint import FingerprintSettings, Task, process_file
from dedupdb.fingerprint.records import Indexed
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import MatchOptions, match_rows
from dedupdb.store import open_store
from dedupdb.store.catalog import StoredEvidence, load_rows
from dedupdb.walk import FileEntry

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_localmatch import SUFFIXES, interleaved  # a sibling script


def index_passes(corpus: Path, shown: list[int]) -> dict[str, Callable[[], object]]:
    files = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in SUFFIXES)
    root = os.fsencode(corpus)
    measure = inner.measure

    def run(looked_for: bool) -> Callable[[], object]:
        def go() -> None:
            inner.measure = measure if looked_for else (lambda *_: None)
            found = 0
            try:
                for path in files:
                    st = path.stat()
                    entry = FileEntry(
                        os.fsencode(path.relative_to(corpus)), st.st_size, st.st_mtime_ns, 0, 0
                    )
                    result = process_file(Task(root, entry, FingerprintSettings(8, 0)))
                    if isinstance(result, Indexed) and result.fingerprint.inner_picture:
                        found += 1
            finally:
                inner.measure = measure
            if looked_for:
                shown[:] = [found]

        return go

    return {"without": run(False), "with": run(True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = sum(1 for p in args.corpus.rglob("*") if p.suffix.lower() in SUFFIXES)
    shown: list[int] = [0]

    interleaved(index_passes(args.corpus, shown), 1)  # warm-up: imports, first calls
    timed = interleaved(index_passes(args.corpus, shown), args.repeats)
    before = statistics.median(timed["without"]) / files * 1000
    after = statistics.median(timed["with"]) / files * 1000
    print(f"| {files} files ({shown[0]} show an inner picture), median of {args.repeats} | "
          "CPU ms per image |")  # fmt: skip
    print("|---|---|")
    print(f"| index, no inner picture looked for | {before:.2f} |")
    print(f"| index, inner picture looked for | {after:.2f} ({after / before:.3f}x) |")

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "bench.sqlite"))
        index(store, args.corpus, IndexOptions(workers=1, in_process=True))
        rows = load_rows(store, "phash", "dhash")
        evidence = StoredEvidence(store)
        reports = interleaved(
            {
                "without": lambda: match_rows(rows, MatchOptions(inner=False), evidence),
                "with": lambda: match_rows(rows, MatchOptions(), evidence),
            },
            args.repeats,
        )
        store.close()
    plain, shown_too = statistics.median(reports["without"]), statistics.median(reports["with"])
    print()
    print(f"| {len(rows.ids)} rows | match_rows CPU s (median of {args.repeats}) |")
    print("|---|---|")
    print(f"| without inner pictures | {plain:.3f} |")
    print(f"| with inner pictures | {shown_too:.3f} ({shown_too / plain:.2f}x) |")


if __name__ == "__main__":
    main()
