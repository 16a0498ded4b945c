"""Indexing speed: dedupdb's per-image work against bare decoding and other tools, side by side.

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_index.py [--corpus /work/corpus/scale] [--repeats 5]

Prints markdown tables (the README's "Benchmarks" section):

1. Per image, one process, one core: each contender processes every file of the corpus once
   per repeat; contenders are interleaved (A, B, C, A, B, C, ...) so that a machine shared with
   other work slows them alike, and the median pass is reported. Both wall-clock rate and
   CPU-time rate (user + system time of the process doing the work) are shown: on a shared
   machine the CPU-time figure is the steadier one.

   - ``pillow draft``: open, ``draft("RGB", (256, 256))`` (dedupdb's working size), load: the
     floor, JPEG entropy decoding at reduced scale.
   - ``dedupdb``: ``process_file`` on each file, the whole per-image work of ``dedupdb index``
     (read, BLAKE3 content hash, draft decode, EXIF, pHash/dHash/aHash/wHash with their 8
     dihedral variants, sharpness, colour signature, thumbnail).
   - ``pillow draft + imagehash.phash``: the same floor plus one pHash, for reference.
   - ``full decode + imagehash.phash``: what imagededup does (no reduced-scale decoding).
   - ``findimagedupes``: Debian's findimagedupes fingerprinting the same files into a fresh
     fingerprint database (``-f FP --no-compare``), one process (GraphicsMagick's OpenMP
     limited to one thread), when installed (``apt-get install findimagedupes``).

2. Whole ``dedupdb index`` runs with 1 and 2 workers (fresh database each, interleaved): wall
   time of the command and the run's own ``seconds`` (which excludes interpreter start-up and
   creating the database).

3. Commit overhead: the share of a real ``index`` run spent in the writer (the per-file
   transactions and their commits), measured by timing ``Writer.write`` in-process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import scipy.fft
from PIL import Image

import dedupdb
from dedupdb.decode import WORKING_SIZE
from dedupdb.index import IndexOptions, Known, Task, run_tasks
from dedupdb.store import open_store
from dedupdb.walk import walk

# The module, not the function that dedupdb/__init__.py exports under the same name.
index_module = importlib.import_module("dedupdb.index")

# One thread everywhere: the per-image comparison is about one core.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MAGICK_THREAD_LIMIT": "1",
    "OPENBLAS_NUM_THREADS": "1",
}

Pass = Callable[[], None]

FLOOR = "pillow draft, RGB (the floor)"
OURS = "dedupdb (read, BLAKE3, decode, 4 hashes x 8 variants, signals)"
FULL = "full decode + imagehash.phash"
IMAGEDEDUP = "imagededup's PHash path (full decode, RGB LANCZOS to 32x32)"
FINDIMAGEDUPES = "findimagedupes (fresh fingerprint db)"


def _image_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def pillow_draft(files: list[Path]) -> Pass:
    def run() -> None:
        for path in files:
            with Image.open(path) as im:
                im.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
                im.load()

    return run


def pillow_draft_phash(files: list[Path]) -> Pass:
    def run() -> None:
        for path in files:
            with Image.open(path) as im:
                im.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
                imagehash.phash(im)

    return run


def pillow_draft_ycbcr(files: list[Path]) -> Pass:
    """The decode dedupdb does: the same DCT scaling, YCbCr out (no colour conversion)."""

    def run() -> None:
        for path in files:
            with Image.open(path) as im:
                im.draft("YCbCr", (WORKING_SIZE, WORKING_SIZE))
                im.load()

    return run


def imagededup_phash(files: list[Path]) -> Pass:
    """imagededup's PHash.encode_image, restated (imagededup needs PyTorch to import):
    ``utils/image_utils.py`` loads the full image in RGB, resizes it to 32x32 with LANCZOS
    (``ANTIALIAS``) and converts to grayscale; ``methods/hashing.py`` takes the 2-D DCT and
    compares the top-left 8x8 with their median."""

    def run() -> None:
        for path in files:
            with Image.open(path) as im:
                rgb = im if im.mode == "RGB" else im.convert("RGBA").convert("RGB")
                small = rgb.resize((32, 32), Image.Resampling.LANCZOS).convert("L")
                pixels = np.asarray(small, dtype=np.float64)
                low = scipy.fft.dct(scipy.fft.dct(pixels, axis=0), axis=1)[:8, :8]
                _ = low >= np.median(low.ravel()[1:])

    return run


def full_decode_phash(files: list[Path]) -> Pass:
    def run() -> None:
        for path in files:
            with Image.open(path) as im:
                im.load()
                imagehash.phash(im)

    return run


def dedupdb_per_image(corpus: Path) -> Pass:
    root = os.fsencode(corpus.resolve())
    tasks = [Task(root, entry, 8, 100) for entry in walk(root)]

    def run() -> None:
        for result in run_tasks(tasks, 1, Known()):
            if not isinstance(result, index_module.Indexed):
                raise SystemExit(f"dedupdb did not index {result.entry.relpath!r}: {result}")

    return run


def findimagedupes(files: list[Path], workdir: Path) -> Pass:
    fingerprints = workdir / "findimagedupes.fp"
    env = {**os.environ, **SINGLE_THREAD_ENV}
    command = ["findimagedupes", "-q", "-q", "-f", str(fingerprints), "--no-compare"]

    def run() -> None:
        fingerprints.unlink(missing_ok=True)  # a fresh fingerprint database each pass
        subprocess.run([*command, *map(str, files)], check=True, env=env, capture_output=True)
        if not fingerprints.exists():
            raise SystemExit("findimagedupes wrote no fingerprint database")

    return run


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(
    contenders: dict[str, Pass], repeats: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Run each contender once per repeat, in turn; (wall seconds, CPU seconds) per pass."""
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in contenders}
    for contender in contenders.values():  # warm-up: page cache, imports, lazy initialisation
        contender()
    for _ in range(repeats):
        for name, contender in contenders.items():
            cpu, wall = _cpu_seconds(), time.perf_counter()
            contender()
            times[name][0].append(time.perf_counter() - wall)
            times[name][1].append(_cpu_seconds() - cpu)
    return times


def per_image_table(corpus: Path, repeats: int, workdir: Path) -> tuple[str, dict[str, float]]:
    files = _image_files(corpus)
    contenders: dict[str, Pass] = {
        FLOOR: pillow_draft(files),
        OURS: dedupdb_per_image(corpus),
        "pillow draft, YCbCr (dedupdb's decode alone)": pillow_draft_ycbcr(files),
        "pillow draft + imagehash.phash": pillow_draft_phash(files),
        FULL: full_decode_phash(files),
        IMAGEDEDUP: imagededup_phash(files),
    }
    if shutil.which("findimagedupes"):
        contenders[FINDIMAGEDUPES] = findimagedupes(files, workdir)
    times = interleaved(contenders, repeats)
    n = len(files)
    rates = {
        name: (n / statistics.median(wall), n / statistics.median(cpu))
        for name, (wall, cpu) in times.items()
    }
    ours_wall, ours_cpu = rates[OURS]
    lines = [
        f"Per image, one process, {n} JPEGs of {_megapixels(files)}, median of {repeats} "
        "interleaved passes:",
        "",
        "| contender | images/s (wall) | images/s (CPU time) | dedupdb's speed relative to it "
        "(wall / CPU) |",
        "|---|---:|---:|---:|",
    ]
    for name, (wall_rate, cpu_rate) in rates.items():
        lines.append(
            f"| {name} | {wall_rate:.1f} | {cpu_rate:.1f} | "
            f"{ours_wall / wall_rate:.2f}x / {ours_cpu / cpu_rate:.2f}x |"
        )
    if not shutil.which("findimagedupes"):
        lines += ["", "findimagedupes is not installed here (apt-get install findimagedupes)."]
    ratios = {name: ours_cpu / cpu_rate for name, (_, cpu_rate) in rates.items()}
    ratios.update({f"{name} (wall)": ours_wall / w for name, (w, _) in rates.items()})
    return "\n".join(lines), ratios


def _megapixels(files: list[Path]) -> str:
    sizes = []
    for path in files:
        with Image.open(path) as im:
            sizes.append(im.size[0] * im.size[1] / 1e6)
    mean_mb = statistics.mean(p.stat().st_size for p in files) / 1e6
    return f"{min(sizes):.0f}-{max(sizes):.0f} MP ({mean_mb:.1f} MB on average)"


def _cli_run(corpus: Path, db: Path, workers: int) -> tuple[float, float]:
    """One ``dedupdb index`` on a fresh database: (wall seconds, the run's own seconds)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    command = [sys.executable, "-m", "dedupdb", "index", str(corpus), "--db", str(db)]
    command += ["--workers", str(workers), "--json", "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = json.loads(done.stdout)
    if summary["new"] != len(_image_files(corpus)):
        raise SystemExit(f"dedupdb index did not index every file: {summary}")
    return wall, float(summary["seconds"])


def workers_table(corpus: Path, repeats: int, workdir: Path) -> tuple[str, float, float]:
    db = workdir / "workers.sqlite"
    runs: dict[int, tuple[list[float], list[float]]] = {1: ([], []), 2: ([], [])}
    _cli_run(corpus, db, 2)  # warm-up
    for _ in range(repeats):
        for workers in (1, 2):
            wall, own = _cli_run(corpus, db, workers)
            runs[workers][0].append(wall)
            runs[workers][1].append(own)
    med = {w: (statistics.median(a), statistics.median(b)) for w, (a, b) in runs.items()}
    n = len(_image_files(corpus))
    lines = [
        f"Whole `dedupdb index` runs over the same {n} files, fresh database each, median of "
        f"{repeats} interleaved runs:",
        "",
        "| workers | command wall time (s) | images/s | run's own time (s) | images/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for workers, (wall, own) in med.items():
        lines.append(f"| {workers} | {wall:.2f} | {n / wall:.1f} | {own:.2f} | {n / own:.1f} |")
    speedup_wall = med[1][0] / med[2][0]
    speedup_own = med[1][1] / med[2][1]
    lines += [
        "",
        f"2 workers vs 1: {speedup_wall:.2f}x (command wall time), {speedup_own:.2f}x "
        "(run's own time).",
    ]
    return "\n".join(lines), speedup_wall, speedup_own


def commit_table(corpus: Path, repeats: int, workdir: Path) -> tuple[str, float]:
    """The share of an in-process ``index`` run spent in ``Writer.write``, in wall-clock time
    and in CPU time (the writer's CPU time over all CPU time of the run, workers included)."""
    original = index_module.Writer.write
    spent = [0.0, 0.0]  # wall, CPU of this process

    def timed_write(self: Any, *args: Any, **kwargs: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            original(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu

    rows = []
    index_module.Writer.write = timed_write
    try:
        for workers in (1, 2):
            shares, cpu_shares, writes = [], [], []
            for attempt in range(repeats):
                db = workdir / f"commit-{workers}-{attempt}.sqlite"
                store = open_store(db)
                try:
                    spent[0] = spent[1] = 0.0
                    started, cpu = time.perf_counter(), _cpu_seconds()
                    summary = dedupdb.index(store, corpus, IndexOptions(workers=workers))
                    total, total_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
                finally:
                    store.close()
                shares.append(spent[0] / total)
                cpu_shares.append(spent[1] / total_cpu)
                writes.append(spent[1] / max(summary.new, 1))
            rows.append(
                (
                    workers,
                    statistics.median(shares),
                    statistics.median(cpu_shares),
                    statistics.median(writes),
                )
            )
    finally:
        index_module.Writer.write = original
    lines = [
        f"Commit overhead: time in the writer (one transaction and commit per file) over the "
        f"whole `index` run, median of {repeats} runs:",
        "",
        "| workers | share of the run's wall time | share of the run's CPU time | writer CPU "
        "per file (ms) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {w} | {share:.2%} | {cpu_share:.2%} | {per * 1000:.2f} |"
        for w, share, cpu_share, per in rows
    ]
    return "\n".join(lines), max(cpu_share for _, _, cpu_share, _ in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus/scale"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", action="append", default=[], choices=["images", "runs", "commit"])
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"no corpus at {args.corpus}: build it with shared/bench/make_corpus.py")
    os.environ.update(SINGLE_THREAD_ENV)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, Pillow {Image.__version__}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start.\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dedupdb-bench-") as tmp:
        workdir = Path(tmp)
        goals = []
        if "images" not in args.skip:
            table, ratios = per_image_table(args.corpus, args.repeats, workdir)
            print(table + "\n")
            goals += [
                ("dedupdb >= 90% of the pillow draft rate", ratios[FLOOR] >= 0.9, ratios[FLOOR]),
                ("dedupdb >= 4x full decode + imagehash.phash", ratios[FULL] >= 4, ratios[FULL]),
                ("dedupdb >= 4x imagededup's PHash path", ratios[IMAGEDEDUP] >= 4,
                 ratios[IMAGEDEDUP]),
            ]  # fmt: skip
            if FINDIMAGEDUPES in ratios:
                goals.append(("dedupdb >= 3x findimagedupes", ratios[FINDIMAGEDUPES] >= 3,
                              ratios[FINDIMAGEDUPES]))  # fmt: skip
        if "runs" not in args.skip:
            table, _, speedup_own = workers_table(args.corpus, args.repeats, workdir)
            print(table + "\n")
            goals.append(("2 workers >= 1.8x one (run's own time)", speedup_own >= 1.8,
                          speedup_own))  # fmt: skip
        if "commit" not in args.skip:
            table, share = commit_table(args.corpus, args.repeats, workdir)
            print(table + "\n")
            goals.append(("commit overhead < 2% of a run (CPU time)", share < 0.02, share))
        print("Goals (per-image ratios from CPU time):\n")
        print("| goal | met | measured |\n|---|---|---:|")
        for goal, met, value in goals:
            print(f"| {goal} | {'yes' if met else 'no'} | {value:.3g} |")
        print(f"\nLoad average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}.")


if __name__ == "__main__":
    main()
