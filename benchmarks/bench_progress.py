"""What recording a run's progress costs: `index` runs of this tree and of one without progress
recording (old main), side by side.

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_progress.py [--before TREE] [--files 400] [--repeats 9]

``--before`` is a dedupdb source tree to compare with; without it, the ``main`` branch's tree
is exported to a temporary folder (``git archive main``). Each repeat indexes the same
generated photos into a fresh database (created before the timing) once with each tree, in
a fresh process, the order alternating (A B, B A, ...) so that a machine shared with other
work slows both alike. For each run it records the indexing process's own CPU time (where
the recording happens: the workers are untouched), the CPU time of the whole run (the
indexing process and its workers) and the wall time, and prints the medians and the median
of the paired ratios. The photos are small (fast to decode) so that the per-file part of the
recording weighs as much as it can.

On a machine shared with other work, two trees' runs differ by several per cent from run to
run, far more than the recording can cost, so the same runs of this tree also time the
recording itself: the CPU time spent in ``tracking.Recorder``'s methods (creating the row,
each ``tick``, each update, the end) over the run's CPU time. The timers wrapped around them
cost a little too: their own cost (measured before the run on an empty function) is
subtracted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter with PYTHONPATH set to the tree under test.
CHILD = r"""
import json, os, resource, sys, time
import dedupdb
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import open_store

root, db, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(db)  # the schema is created before the timing
recording = [0.0]
calls = [0]
try:
    from dedupdb import tracking
except ImportError:  # the tree before
    tracking = None
if tracking is not None:
    depth = [0]

    def timed(function):
        def wrapper(*args, **kwargs):
            depth[0] += 1
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:  # tick calls flush: count the outer call only
                    recording[0] += time.process_time() - started
                    calls[0] += 1
        return wrapper

    # What the timing itself costs a call (two CPU-clock reads), subtracted below.
    noop = timed(lambda: None)
    probe = time.process_time()
    for _ in range(20000):
        noop()
    timer_cost = (time.process_time() - probe) / 20000
    recording[0] = calls[0] = 0

    start = tracking.Recorder.start.__func__
    tracking.Recorder.start = classmethod(timed(start))
    for name in ("tick", "flush", "finish", "error"):
        setattr(tracking.Recorder, name, timed(getattr(tracking.Recorder, name)))
self0 = resource.getrusage(resource.RUSAGE_SELF)
wall = time.perf_counter()
summary = index(store, root, IndexOptions(workers=workers))
wall = time.perf_counter() - wall
self1 = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, joined by the pool
store.close()
own = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
print(json.dumps({
    "tree": os.path.dirname(os.path.dirname(dedupdb.__file__)),
    "new": summary.new,
    "wall": wall,
    "own_cpu": own,
    "total_cpu": own + kids.ru_utime + kids.ru_stime,
    "recording_cpu": max(0.0, recording[0] - calls[0] * timer_cost) if tracking else 0.0,
    "recording_calls": calls[0],
}))
"""


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> None:
    """Distinct photo-like JPEGs: smooth colour fields with a little noise."""
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    for n in range(count):
        rng = np.random.default_rng(n)
        small = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        picture = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        noisy = np.asarray(picture, dtype=np.int16) + rng.integers(-6, 7, (height, width, 3))
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
            folder / f"{n:05d}.jpg", quality=88
        )


def export_main(target: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "main"], check=True, capture_output=True
    ).stdout
    target.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run(tree: Path, root: Path, db: Path, workers: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(db), str(workers)],
        env=env,
        cwd=root.parent,  # not the repository: `-c` puts the working folder first on sys.path
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    if Path(str(result["tree"])).resolve() != tree.resolve():
        raise SystemExit(f"ran {result['tree']}, not {tree}: is dedupdb installed elsewhere?")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="the tree to compare with [main]")
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the photos")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="dedupdb-bench-progress-") as tmp:
        work = Path(tmp)
        before = args.before or export_main(work / "main")
        photos = work / "photos"
        make_photos(photos, args.files, (width, height))
        trees = {"before": before, "this": REPO}
        results: dict[str, list[dict[str, float]]] = {"before": [], "this": []}
        for repeat in range(args.repeats):
            order = ["before", "this"] if repeat % 2 == 0 else ["this", "before"]
            for name in order:
                db = work / f"{name}-{repeat}.sqlite"
                result = run(trees[name], photos, db, args.workers)
                assert result["new"] == args.files, result
                results[name].append(result)
    print(
        f"{args.files} photos of {width}x{height}, {args.workers} worker(s), {args.repeats} "
        f"runs each, interleaved; load average {load} at the start, "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.\n"
    )
    print("| figure (median) | before | this tree | this / before (median of pairs) |")
    print("|---|---:|---:|---:|")
    for key, label in (
        ("own_cpu", "indexing process CPU (s)"),
        ("total_cpu", "whole run CPU, workers included (s)"),
        ("wall", "run wall time (s)"),
    ):
        a = [r[key] for r in results["before"]]
        b = [r[key] for r in results["this"]]
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(
            f"| {label} | {statistics.median(a):.3f} | {statistics.median(b):.3f} | "
            f"{ratio:.4f} ({(ratio - 1) * 100:+.2f} %) |"
        )
    this = results["this"]
    own = statistics.median(r["recording_cpu"] / r["own_cpu"] for r in this)
    total = statistics.median(r["recording_cpu"] / r["total_cpu"] for r in this)
    spent = statistics.median(r["recording_cpu"] for r in this)
    calls = statistics.median(r["recording_calls"] for r in this)
    print(
        f"\nThe recording itself (this tree's runs, median): {spent * 1000:.1f} ms of CPU a run "
        f"over {calls:.0f} calls, "
        f"{own:.3%} of the indexing process's CPU time, {total:.3%} of the whole run's."
    )


if __name__ == "__main__":
    main()
