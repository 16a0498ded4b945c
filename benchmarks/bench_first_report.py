"""The first ``dedupdb report`` after installing: how long it takes and when it first speaks.

Usage (from the repository)::

    python /work/shared/bench/make_corpus.py /tmp/corpus        # the public corpus, 624 files
    python benchmarks/bench_first_report.py /tmp/corpus [--repeats 3] [--html] [--tree DIR]

Each repeat makes a fresh virtual environment, installs this checkout into it (``pip install
.``, not editable: as a user installs it, so no compiled code of an earlier run lies next to
the package), indexes the corpus (not timed), then times, as separate processes:

- the first ``dedupdb report`` (summary and ``--json``): wall time, and the time until the
  command's first line of output;
- the same command again (what every later report costs);
- with ``--html``, also a report writing the HTML page with its thumbnails (decoding every
  file of the first 500 clusters: the part that grows with the photos' sizes).

numba's cache (``NUMBA_CACHE_DIR``) points into the fresh environment, so code compiled by
an earlier run or by the tests is never reused. The figures are medians of the repeats.
"""

from __future__ import annotations

import argparse
import os
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
    subprocess.run([str(pip), "install", "-q", str(tree)], check=True)
    return where / "bin" / "dedupdb"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, seconds until the first line on stdout or stderr) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    first = None
    for _line in proc.stdout:
        if first is None:
            first = time.perf_counter() - start
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {proc.returncode}")
    wall = time.perf_counter() - start
    return wall, first if first is not None else wall


def one_run(corpus: Path, html: bool, tree: Path) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="dedupdb-first-") as tmp:
        base = Path(tmp)
        dedupdb = fresh_install(base / "venv", tree)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(base / "numba-cache")}
        db = str(base / "db.sqlite")
        subprocess.run(
            [str(dedupdb), "index", str(corpus), "--db", db, "-q"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
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
        default=THIS_TREE,
        help="the checkout to install (e.g. an older one, from `git archive COMMIT`)",
    )
    args = parser.parse_args()
    runs = [one_run(args.corpus, args.html, args.tree) for _ in range(args.repeats)]
    print(f"{args.tree}: {args.repeats} fresh installs; medians (wall s, s to first output)")
    for name in runs[0]:
        wall = statistics.median(r[name][0] for r in runs)
        first = statistics.median(r[name][1] for r in runs)
        print(f"  {name:<15} {wall:6.2f} s   first output after {first:5.2f} s")


if __name__ == "__main__":
    main()
