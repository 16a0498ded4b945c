"""The first ``dedupdb report`` after installing: how long it takes and when it first speaks.

Usage (from the repository)::

    python /work/shared/bench/make_corpus.py /tmp/corpus        # the public corpus, 624 files
    python benchmarks/bench_first_report.py /tmp/corpus [--repeats 3] [--html] \\
        [--tree OTHER_CHECKOUT ...]

Each repeat makes a fresh virtual environment per checkout (this one, and each ``--tree``, e.g.
an older one from ``git archive COMMIT | tar -x -C DIR``), installs it (``pip install DIR``,
not editable: as a user installs it, so no compiled code of an earlier run lies next to the
package), indexes the corpus (not timed), then times, as separate processes:

- the first ``dedupdb report`` (summary and ``--json``): wall time, CPU time (user + system of
  the command), and the time until its first output, read through a pseudo-terminal as a user
  at a terminal sees it;
- the same command again (what every later report costs);
- with ``--html``, also a report writing the HTML page with its thumbnails (decoding every
  file of the first 500 clusters: the part that grows with the photos' sizes).

numba's cache (``NUMBA_CACHE_DIR``) points into the fresh environment, so code compiled by an
earlier run or by the tests is never reused. The checkouts take turns within each repeat; the
figures are medians of the repeats. On a machine shared with other jobs, wall times follow the
load; CPU times are steadier.
"""

from __future__ import annotations

import argparse
import os
import pty
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parent.parent


def fresh_install(where: Path, tree: Path) -> Path:
    """A new virtual environment with the checkout ``tree`` installed; returns its
    ``dedupdb``."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = where / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", str(tree)], check=True, stderr=subprocess.DEVNULL)
    return where / "bin" / "dedupdb"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, s until the first output) of one command run on a pseudo-terminal."""
    master, slave = pty.openpty()
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    first = None
    while True:
        ready, _, _ = select.select([master], [], [], 0.01)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not data:
                break
            if first is None:
                first = time.perf_counter() - start
        elif proc.poll() is not None:
            break
    proc.wait()
    wall = time.perf_counter() - start
    os.close(master)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {proc.returncode}")
    return wall, _children_cpu() - cpu, first if first is not None else wall


def one_run(corpus: Path, html: bool, tree: Path) -> dict[str, tuple[float, float, float]]:
    with tempfile.TemporaryDirectory(prefix="dedupdb-first-") as tmp:
        base = Path(tmp)
        dedupdb = fresh_install(base / "venv", tree)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(base / "numba-cache")}
        env.pop("DEDUPDB_DB", None)
        db = str(base / "db.sqlite")
        subprocess.run(
            [str(dedupdb), "index", str(corpus), "--db", db, "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            check=False,  # some files of a library may not be readable: still a library
        )
        report = [str(dedupdb), "report", "--db", db, "--json", str(base / "r.json")]
        figures = {"first report": timed(report, env), "second report": timed(report, env)}
        if html:
            figures["report --html"] = timed([*report, "--html", str(base / "r.html")], env)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--html", action="store_true", help="also time a report with --html")
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        default=[],
        help="another checkout to install and time in turn with this one (repeatable)",
    )
    args = parser.parse_args()
    trees = [THIS_TREE, *args.tree]
    runs: dict[Path, list[dict[str, tuple[float, float, float]]]] = {t: [] for t in trees}
    for _ in range(args.repeats):
        for tree in trees:
            runs[tree].append(one_run(args.corpus, args.html, tree))
    print(f"{args.repeats} fresh installs each; medians")
    for tree in trees:
        print(tree)
        for name in runs[tree][0]:
            wall, cpu, first = (statistics.median(r[name][i] for r in runs[tree]) for i in range(3))
            print(
                f"  {name:<15} wall {wall:6.2f} s   CPU {cpu:6.2f} s   "
                f"first output after {first:5.2f} s"
            )


if __name__ == "__main__":
    main()
