"""Index per image, this checkout against another, side by side in one run.

Usage (from the repository, with dedupdb installed in this interpreter)::

    git worktree add /tmp/old COMMIT
    python3 -m venv /tmp/old/.venv && /tmp/old/.venv/bin/pip install -q -e /tmp/old
    python benchmarks/bench_index_vs.py CORPUS --other-python /tmp/old/.venv/bin/python

Each pair starts one fresh process with this interpreter and one with the other (this one
first, then the other, in turn): each process loads its dedupdb, makes one warm-up pass over
the corpus (page cache, lazy initialisation), then times ``--passes`` passes of the whole
per-image work of ``dedupdb index`` (``run_tasks`` in process: read, BLAKE3, decode, hashes,
signals), one process, one thread. Prints each side's median CPU milliseconds per image and
the median of the pairs' CPU ratios (this / other): on a machine shared with other work the
CPU figures are the steady ones, wall times only say how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def child(corpus: Path, passes: int) -> dict[str, float]:
    """Run in the measured interpreter: median wall and CPU seconds of one pass."""
    try:
        from dedupdb.indexing import run_tasks
    except ImportError:  # a dedupdb from before the module was named for its stage
        from dedupdb.index import run_tasks  # type: ignore[no-redef]
    from dedupdb.walk import walk

    root = os.fsencode(corpus.resolve())
    try:
        from dedupdb.fingerprint import FingerprintSettings, Indexed, Task
    except ImportError:  # a dedupdb from before the fingerprint stage (the other side)
        from dedupdb.workers import Indexed, Task  # type: ignore[no-redef]

        tasks = [Task(root, entry, 8, 100) for entry in walk(root)]  # type: ignore[arg-type]
    else:
        settings = FingerprintSettings(8, 100)
        tasks = [Task(root, entry, settings) for entry in walk(root)]

    def one_pass() -> int:
        return sum(isinstance(r, Indexed) for r in run_tasks(tasks, 1, in_process=True))

    one_pass()
    walls, cpus, indexed = [], [], 0
    for _ in range(passes):
        cpu, wall = _cpu(), time.perf_counter()
        indexed = one_pass()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
    return {
        "files": len(tasks),
        "indexed": indexed,
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(python: str, corpus: Path, passes: int) -> dict[str, float]:
    command = [python, __file__, str(corpus), "--passes", str(passes), "--child"]
    env = {**os.environ, **SINGLE_THREAD_ENV}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--other-python", help="the interpreter with the other dedupdb")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--passes", type=int, default=1, help="timed passes in each process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.corpus, args.passes)))
        return
    if not args.other_python:
        parser.error("--other-python is required")
    this: list[dict[str, float]] = []
    other: list[dict[str, float]] = []
    for _ in range(args.pairs):
        this.append(measure(sys.executable, args.corpus, args.passes))
        other.append(measure(args.other_python, args.corpus, args.passes))
    files = this[0]["files"]
    if this[0]["indexed"] != other[0]["indexed"]:
        print(f"note: indexed {this[0]['indexed']} here, {other[0]['indexed']} there")
    ratios = [a["cpu"] / b["cpu"] for a, b in zip(this, other, strict=True)]

    def ms(side: list[dict[str, float]], key: str) -> float:
        return 1000 * statistics.median(s[key] for s in side) / files

    print(f"{files} files, {args.pairs} pairs, median per image:\n")
    print("| | CPU ms | wall ms |\n| --- | ---: | ---: |")
    print(f"| this ({sys.executable}) | {ms(this, 'cpu'):.1f} | {ms(this, 'wall'):.1f} |")
    print(f"| other ({args.other_python}) | {ms(other, 'cpu'):.1f} | {ms(other, 'wall'):.1f} |")
    spread = f"{min(ratios):.3f}-{max(ratios):.3f}"
    print(f"\nCPU ratio this / other, median of pairs: {statistics.median(ratios):.3f} ({spread})")


if __name__ == "__main__":
    main()
