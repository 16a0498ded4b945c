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
   time of the command, the run's own ``seconds`` (which excludes interpreter start-up and
   creating the database) and the CPU time of all its processes, and the same command into a
   database created (schema migrated) before it is timed, as every run but a user's first;
   side by side with the machine's own ceiling in the same repeats: a pure-Python loop and the
   bare draft decode of the same files, each split over 1 and 2 forked processes. On a machine
   shared with other jobs the ceiling is what a second process can get at all; CPU growth (CPU
   time with 2 processes over 1) shows what two processes at once cost each other (cache,
   memory).

3. Where the time goes (``--skip breakdown`` to leave out): instrumented runs, each in a fresh
   process, split into the serial start, the indexer's CPU while the workers run, the
   workers' CPU and the tail; from these CPU times, the speed-up an idle machine would give.

4. Commit overhead: the share of a real ``index`` run spent in the writer (the per-file
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
from dedupdb.fingerprint import FingerprintSettings, Indexed, Task
from dedupdb.indexing import IndexOptions, run_tasks
from dedupdb.store import open_store
from dedupdb.walk import walk

# The module, not the function that dedupdb/__init__.py exports under the same name.
index_module = importlib.import_module("dedupdb.indexing")

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
    tasks = [Task(root, entry, FingerprintSettings(8, 100)) for entry in walk(root)]

    def run() -> None:
        for result in run_tasks(tasks, 1, in_process=True):
            if not isinstance(result, Indexed):
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


def _cli_run(
    corpus: Path, db: Path, workers: int, *, created: bool = False, tree: Path | None = None
) -> tuple[float, float, float]:
    """One ``dedupdb index`` on a fresh database: (wall seconds, the run's own seconds, CPU
    seconds of the command and its workers). ``created``: the database (its schema, at the
    newest revision) is created before the timed command, as for every run but a user's
    first; the command then indexes every file into it. ``tree``: the dedupdb of another
    source tree runs (``PYTHONPATH``), creating the database with its own schema."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    if created:
        create = f"from dedupdb.store import open_store; open_store({str(db)!r}).close()"
        subprocess.run([sys.executable, "-c", create], check=True, env=env)
    command = [sys.executable, "-m", "dedupdb", "index", str(corpus), "--db", str(db)]
    command += ["--workers", str(workers), "--json", "--quiet"]
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    summary = json.loads(done.stdout)
    if summary["new"] != len(_image_files(corpus)):
        raise SystemExit(f"dedupdb index did not index every file: {summary}")
    return wall, float(summary["seconds"]), cpu


def _children_cpu() -> float:
    """CPU time of the waited-for child processes (and theirs): user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spin(iterations: int) -> None:
    """Pure-Python CPU work: no memory traffic, no shared state."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    if total < 0:  # never: keeps the loop from being optimised away
        print(total)


def _fork_context() -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork")


def _spread(work: Callable[[Any], None], items: list[Any], processes: int) -> tuple[float, float]:
    """Run ``work`` over ``items`` in ``processes`` forked processes, each taking the next item
    when done (as dedupdb's pool does): (wall seconds, CPU seconds of the processes)."""
    cpu, started = _children_cpu(), time.perf_counter()
    pool = _fork_context().Pool(processes)
    for _ in pool.imap_unordered(work, items, chunksize=1):
        pass
    pool.close()
    pool.join()  # reaped: their CPU time is counted
    return time.perf_counter() - started, _children_cpu() - cpu


def _draft_one(path: Path) -> None:
    with Image.open(path) as im:
        im.draft("YCbCr", (WORKING_SIZE, WORKING_SIZE))
        im.load()


def _spin_units(seconds: float) -> list[int]:
    """Pieces of pure-Python work adding up to about ``seconds`` of one core, 40 pieces."""
    probe = 200_000
    started = time.perf_counter()
    _spin(probe)
    per = (time.perf_counter() - started) / probe
    return [max(1, int(seconds / per / 40))] * 40


def workers_table(
    corpus: Path, repeats: int, workdir: Path, before: Path | None = None
) -> tuple[str, float, float, float]:
    """1 worker against 2, side by side in each repeat with the machine's own ceiling: the same
    split of work over 1 and 2 forked processes for a pure-Python loop (no memory traffic)
    and for the bare draft decode of the same files (what the workers mostly do). ``before``:
    the commands of another source tree of dedupdb too, interleaved with this one's."""
    db = workdir / "workers.sqlite"
    files = sorted(_image_files(corpus), key=lambda p: p.stat().st_size, reverse=True)
    n = len(files)
    _cli_run(corpus, db, 2)  # warm-up: page cache, bytecode
    one_run = _cli_run(corpus, db, 1)[1]
    units = _spin_units(one_run)
    names = ("python", "draft", "python cpu", "draft cpu", "own", "command", "cpu")
    names += ("created", "created cpu")
    trees: dict[str, Path | None] = {"": None}
    if before is not None:
        trees["before "] = before
        _cli_run(corpus, db, 2, tree=before)  # warm-up
        names += tuple(f"before {name}" for name in names[4:])
    runs: dict[str, dict[int, list[float]]] = {k: {1: [], 2: []} for k in names}
    loads = []
    for _ in range(repeats):
        for workers in (1, 2):
            for name, (work, items) in {
                "python": (_spin, units),
                "draft": (_draft_one, files),
            }.items():
                wall, cpu = _spread(work, items, workers)
                runs[name][workers].append(wall)
                runs[f"{name} cpu"][workers].append(cpu)
            for prefix, tree in trees.items():
                wall, own, cpu = _cli_run(corpus, db, workers, tree=tree)
                runs[f"{prefix}command"][workers].append(wall)
                runs[f"{prefix}own"][workers].append(own)
                runs[f"{prefix}cpu"][workers].append(cpu)
                wall, _, cpu = _cli_run(corpus, db, workers, created=True, tree=tree)
                runs[f"{prefix}created"][workers].append(wall)
                runs[f"{prefix}created cpu"][workers].append(cpu)
        loads.append(os.getloadavg()[0])

    def ratio(name: str) -> float:  # median of the per-repeat ratios, 1 over 2
        return statistics.median(a / b for a, b in zip(runs[name][1], runs[name][2], strict=True))

    def med(name: str, workers: int) -> float:
        return statistics.median(runs[name][workers])

    speedup_own, speedup_wall = ratio("own"), ratio("command")
    ceiling = ratio("python")

    def row(label: str, wall: str, cpu: str) -> str:
        return (
            f"| {label} | {med(wall, 1):.2f} | {med(wall, 2):.2f} | {ratio(wall):.2f}x | "
            f"{med(cpu, 1):.2f} | {med(cpu, 2):.2f} | {1 / ratio(cpu):.2f}x |"
        )

    lines = [
        f"1 worker against 2 over the same {n} files, side by side with the machine's ceiling "
        f"(the same work split over 1 and 2 forked processes), {repeats} interleaved repeats; "
        f"ratios are medians of each repeat's ratio; load average (1 min) during the repeats: "
        f"{', '.join(f'{x:.1f}' for x in loads)}. CPU growth: CPU time with 2 processes over "
        "1 (above 1.00x, two at once run slower per file: shared cache, memory bandwidth):",
        "",
        "| work | wall, 1 process (s) | wall, 2 (s) | speed-up | CPU, 1 (s) | CPU, 2 (s) | "
        "CPU growth |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("pure-Python loop (the machine's ceiling)", "python", "python cpu"),
        row("bare draft decode of the same files (YCbCr, no hashing)", "draft", "draft cpu"),
        row("`dedupdb index --workers N`, the run's own time", "own", "cpu"),
        row("`dedupdb index --workers N`, command wall time", "command", "cpu"),
        row(
            "`dedupdb index --workers N`, command wall time, database created before",
            "created",
            "created cpu",
        ),
    ]
    if before is not None:
        lines += [
            row(f"before ({before}): {label}", f"before {wall}", f"before {cpu}")
            for label, wall, cpu in (
                ("the run's own time", "own", "cpu"),
                ("command wall time (new database)", "command", "cpu"),
                ("command wall time, database created before", "created", "created cpu"),
            )
        ]
    lines += [
        "",
        f"2 workers vs 1: {speedup_own:.2f}x (run's own time), {speedup_wall:.2f}x (command), "
        f"{ratio('created'):.2f}x (command, database created before), "
        f"against {ceiling:.2f}x for the pure-Python loop and {ratio('draft'):.2f}x for the "
        f"bare decode measured alongside: {speedup_own / ceiling:.0%} of the machine's ceiling.",
        "",
        "Best of the repeats (the least disturbed runs on a shared machine), 1 worker / 2 "
        "workers, seconds:",
        "",
    ]
    for prefix in trees:
        best = {
            name: (min(runs[f"{prefix}{name}"][1]), min(runs[f"{prefix}{name}"][2]))
            for name in ("own", "command", "created")
        }
        lines.append(
            f"- {prefix.strip() or 'this tree'}: "
            + "; ".join(
                f"{label} {one:.2f} / {two:.2f} ({one / two:.2f}x)"
                for label, (one, two) in zip(
                    ("run's own time", "command (new database)", "command (database created)"),
                    best.values(),
                    strict=True,
                )
            )
        )
    return "\n".join(lines), speedup_wall, speedup_own, ratio("created")


def breakdown_table(corpus: Path, repeats: int, workdir: Path) -> tuple[str, float]:
    """Where a run's time goes, from instrumented ``index`` runs, each in a fresh process as
    the CLI's (1 and 2 workers interleaved, medians): the serial start (plan, warm-up) in CPU
    time, the indexer's CPU time while the workers run (writer, pool), the workers' CPU time,
    and the tail (fewer files left than workers) in wall time. From the CPU times, what an
    idle machine would give::

        T1 = start + workers' CPU (1)            (the writer runs on the other core)
        T2 = start + (workers' CPU (2) + indexer CPU while they run) / 2 + last file / 2

    where "last file" is the workers' CPU per image scaled by the last (smallest) file's size.
    """
    files = _image_files(corpus)
    sizes = sorted(p.stat().st_size for p in files)
    last_share = sizes[0] / statistics.mean(sizes)
    names = ("run", "start", "tail", "during", "workers")
    found: dict[str, dict[int, list[float]]] = {k: {1: [], 2: []} for k in names}
    for attempt in range(repeats):
        for workers in (1, 2):
            db = workdir / f"breakdown-{workers}-{attempt}.sqlite"
            open_store(db).close()  # created and migrated outside the measured run
            command = [sys.executable, __file__, "--corpus", str(corpus), "--breakdown-child"]
            command += [str(db), str(workers)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            for name, value in json.loads(done.stdout).items():
                found[name][workers].append(value)

    def med(name: str, workers: int) -> float:
        return statistics.median(found[name][workers])

    n = len(files)
    rows = []
    for workers in (1, 2):
        rows.append(
            f"| {workers} | {med('run', workers):.2f} | {med('start', workers):.2f} | "
            f"{med('during', workers):.2f} | {med('workers', workers):.2f} | "
            f"{med('workers', workers) / n * 1000:.0f} | {med('tail', workers):.2f} |"
        )
    start = statistics.median(found["start"][1] + found["start"][2])
    w1, w2, during = med("workers", 1), med("workers", 2), med("during", 2)
    last = w2 / n * last_share
    t1 = start + w1
    t2 = start + (w2 + during) / 2 + last / 2
    lines = [
        f"Where the time goes: in-process `index` runs, median of {repeats} (seconds; "
        "CPU times are the steady figures on a shared machine):",
        "",
        "| workers | run (wall) | start: plan, warm-up (indexer CPU) | indexer CPU while the "
        "workers run | workers' CPU | workers' CPU per image (ms) | tail with a worker idle "
        "(wall) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"From these CPU times, an idle machine would take {t1:.2f} s with 1 worker and "
        f"{t2:.2f} s with 2: {t1 / t2:.2f}x. Step by step from the ideal 2.00x: the serial "
        f"start gives {t1 / (start + w1 / 2):.2f}x; the workers' extra CPU with 2 "
        f"({w2 / w1:.2f}x as much) {t1 / (start + w2 / 2):.2f}x; the indexer's share of the two "
        f"cores {t1 / (start + (w2 + during) / 2):.2f}x; the tail {t1 / t2:.2f}x.",
    ]
    return "\n".join(lines), t1 / t2


def breakdown_child(corpus: Path, db: Path, workers: int) -> dict[str, float]:
    """One ``index`` run in this fresh process (as the CLI runs it), instrumented."""
    original = index_module.warm_up
    stamps: list[float] = []
    start_cpu = [0.0]

    def timed_warm_up() -> None:
        original()
        start_cpu[0] = time.process_time()

    def progress(event: Any) -> None:
        stamps.append(time.perf_counter())

    index_module.warm_up = timed_warm_up
    store = open_store(db)
    try:
        cpu, children, started = time.process_time(), _children_cpu(), time.perf_counter()
        dedupdb.index(store, corpus, IndexOptions(workers=workers), progress)
        total = time.perf_counter() - started
        parent_cpu, workers_cpu = time.process_time() - cpu, _children_cpu() - children
    finally:
        store.close()
    results = stamps[1:]  # stamps[0]: the plan is ready
    return {
        "run": total,
        "start": start_cpu[0] - cpu,
        "during": parent_cpu - (start_cpu[0] - cpu),
        "workers": workers_cpu,
        "tail": results[-1] - results[-workers] if workers > 1 else 0.0,
    }


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
    parser.add_argument(
        "--skip", action="append", default=[], choices=["images", "runs", "breakdown", "commit"]
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another dedupdb source tree whose `dedupdb index` commands run interleaved with "
        "this one's (e.g. `git worktree add /tmp/before COMMIT`)",
    )
    parser.add_argument(
        "--breakdown-child", nargs=2, metavar=("DB", "WORKERS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.breakdown_child:
        db, workers = args.breakdown_child
        print(json.dumps(breakdown_child(args.corpus, Path(db), int(workers))))
        return
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
            table, speedup_wall, speedup_own, speedup_created = workers_table(
                args.corpus, args.repeats, workdir, args.before
            )
            print(table + "\n")
            goals.append(("2 workers >= 1.8x one (run's own time)", speedup_own >= 1.8,
                          speedup_own))  # fmt: skip
            goals.append(("2 workers >= 1.8x one (whole command)", speedup_wall >= 1.8,
                          speedup_wall))  # fmt: skip
            goals.append(("2 workers >= 1.8x one (whole command, database created before)",
                          speedup_created >= 1.8, speedup_created))  # fmt: skip
        if "breakdown" not in args.skip:
            table, projected = breakdown_table(args.corpus, args.repeats, workdir)
            print(table + "\n")
            goals.append(("2 workers >= 1.8x one (CPU-time model, idle machine)",
                          projected >= 1.8, projected))  # fmt: skip
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
