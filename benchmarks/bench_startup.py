"""Start-up costs of the ``dedupdb`` command: what each command costs before it does its work.

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_startup.py [--repeats 5] [--before /path/to/an/older/checkout]

Each command runs as a user runs it (``python -m dedupdb ...``, a fresh process each time) and
its CPU time (user + system, of the command and its workers) and wall time are taken; the
figures are medians of the repeats. With ``--before``, the same commands run from another
source tree of dedupdb (``PYTHONPATH``; e.g. ``git worktree add /tmp/before COMMIT``),
interleaved with this one's, each tree with a database of its own schema.

The commands:

- ``--version`` and ``--help``: Python's start plus what the command line itself loads;
- ``status`` of an existing database;
- ``index`` of an empty folder into an existing database: a re-index with nothing new;
- ``index`` of one small picture with 1 and 2 workers, into an existing database and into a
  new one: the serial start of an index run (imports, opening and migrating the database,
  the workers' warm-up and start, the end of the run), which more workers cannot share.

On a machine shared with other jobs the wall times follow the load; CPU times are steadier.
For the ``index`` commands one more figure is taken: the CPU time of the indexing process
itself until it hands the first file to a worker (the start of the run that more workers
cannot share, on its critical path; the workers' own start-up runs meanwhile when they are
forked before it). It does not depend on the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

THIS_TREE = Path(__file__).resolve().parent.parent

# ``python -m dedupdb``, noting this process's CPU time when its pool is first asked for
# results (the first file goes to a worker); printed last on stderr.
PROBE = """
import sys, time
from dedupdb import pool
real, first = pool.Pool.results, []
def results(self):
    first.append(time.process_time())
    return real(self)
pool.Pool.results = results
from dedupdb.cli import main
try:
    main()
finally:
    print(f"first-file-cpu {first[0] if first else float('nan')}", file=sys.stderr)
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class Tree:
    """One source tree of dedupdb and the databases its commands use."""

    def __init__(self, name: str, source: Path, workdir: Path) -> None:
        self.name = name
        self.env = {**os.environ, "PYTHONPATH": str(source)}
        self.workdir = workdir / name
        self.workdir.mkdir()
        self.template = self.workdir / "template.sqlite"  # an existing, empty database
        self.db = self.workdir / "run.sqlite"
        self.dedupdb("status", "--db", str(self.template))

    def dedupdb(self, *args: str) -> tuple[float, float, float]:
        """(CPU seconds, wall seconds, the indexing process's CPU seconds until its first file
        went to a worker, NaN if none did) of one ``python -m dedupdb ARGS``."""
        probe = args[0] == "index"
        command = ["-c", PROBE] if probe else ["-m", "dedupdb"]
        cpu, started = _cpu(), time.perf_counter()
        done = subprocess.run(
            [sys.executable, *command, *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.workdir,  # not the source tree: PYTHONPATH decides which dedupdb runs
        )
        cpu, wall = _cpu() - cpu, time.perf_counter() - started
        first = float(done.stderr.split()[-1]) if probe else float("nan")
        return cpu, wall, first

    def copy_of_template(self) -> None:
        _remove_database(self.db)
        shutil.copy(self.template, self.db)

    def no_database(self) -> None:
        _remove_database(self.db)


def cases(tree: Tree, empty: Path, one: Path) -> dict[str, tuple[list[str], Callable[[], None]]]:
    template, db = str(tree.template), str(tree.db)

    def nothing() -> None:
        pass

    index_one = ["index", str(one), "--db", db, "--quiet", "--workers"]
    return {
        "--version": (["--version"], nothing),
        "--help": (["--help"], nothing),
        "status (database exists)": (["status", "--db", template], nothing),
        "index, nothing new (database exists)": (
            ["index", str(empty), "--db", template, "--quiet"],
            nothing,
        ),
        "index 1 small picture, 1 worker (database exists)": (
            [*index_one, "1"],
            tree.copy_of_template,
        ),
        "index 1 small picture, 2 workers (database exists)": (
            [*index_one, "2"],
            tree.copy_of_template,
        ),
        "index 1 small picture, 1 worker (new database)": ([*index_one, "1"], tree.no_database),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another dedupdb source tree to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dedupdb-startup-") as tmp:
        workdir = Path(tmp)
        empty, one = workdir / "empty", workdir / "one"
        empty.mkdir()
        one.mkdir()
        rng = np.random.default_rng(1)
        Image.fromarray((rng.random((480, 640, 3)) * 255).astype(np.uint8)).save(one / "a.jpg")
        trees = [Tree("now", THIS_TREE, workdir)]
        if args.before:
            trees.insert(0, Tree("before", args.before.resolve(), workdir))
        runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        loads = []
        for _ in range(args.repeats):
            for tree in trees:
                for name, (command, prepare) in cases(tree, empty, one).items():
                    prepare()
                    runs.setdefault((tree.name, name), []).append(tree.dedupdb(*command))
            loads.append(os.getloadavg()[0])
    names = [t.name for t in trees]
    print(
        f"{args.repeats} interleaved repeats, medians; load average (1 min) during the repeats: "
        f"{', '.join(f'{x:.1f}' for x in loads)}\n"
    )
    print(
        "| command | "
        + " | ".join(f"CPU, {n} (s)" for n in names)
        + " | "
        + " | ".join(f"wall, {n} (s)" for n in names)
        + " | "
        + " | ".join(f"indexer CPU to the first file, {n} (s)" for n in names)
        + " |"
    )
    print("|---|" + "---:|" * (3 * len(names)))
    for name in cases(trees[0], empty, one):
        columns = [
            [statistics.median(run[k] for run in runs[(n, name)]) for n in names] for k in range(3)
        ]
        # NaN: no file went to a worker
        cells = [f"{x:.2f}" if x == x else "-" for column in columns for x in column]
        print(f"| `dedupdb {name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
