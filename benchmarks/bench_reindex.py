"""Re-indexing a large, unchanged library: how long `dedupdb index` takes when nothing changed.

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_reindex.py [--files 100000] [--repeats 3] [--workdir DIR]

Builds a library of ``--files`` small files with image extensions (100 folders), and a real
database in which every one of them is already indexed: rows inserted through the models with
each file's real size and mtime (the hashes are random bytes; nothing reads them here). Then
times full ``dedupdb index`` commands on it (interpreter start-up included) and checks that the
run found every file unchanged and processed none. When strace is installed, one more run is
traced to prove that no file in the library was opened (only folders were listed and stat'ed).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, select

from dedupdb.hashes import VARIANTS, HashParams
from dedupdb.indexing import IndexOptions, resolve_params
from dedupdb.store import open_store
from dedupdb.store.schema import PRESENT, Image, Root
from dedupdb.walk import display

FOLDERS = 100
# The summary's counts of files that were read (none may be, when nothing changed).
PROCESSED = ("new", "changed", "moved", "skipped", "failed")
BATCH = 5000


def build_library(root: Path, count: int) -> list[Path]:
    """``count`` tiny files named like camera photos, spread over FOLDERS folders."""
    paths = []
    for n in range(count):
        folder = root / f"{2000 + n % FOLDERS // 12}" / f"{n % FOLDERS:03d}"
        if n < FOLDERS:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"IMG_{n:06d}.jpg"
        path.write_bytes(b"\xff\xd8\xff" + n.to_bytes(4, "big"))
        paths.append(path)
    return paths


def fill_database(db: Path, root: Path, paths: list[Path]) -> None:
    """One present row per file, with the file's real stat, as a finished index leaves it."""
    store = open_store(db)
    try:
        params = resolve_params(store, IndexOptions())
        with store.transaction() as session:
            root_row = Root(path=os.fsencode(root), display_path=str(root), created_at=_now())
            session.add(root_row)
            session.flush()
            root_id = root_row.id
        blob = bytes(params.nbytes * VARIANTS)
        rows = []
        for path in paths:
            st = path.stat()
            relpath = os.fsencode(path.relative_to(root))
            rows.append(_row(root_id, relpath, st, params, blob))
            if len(rows) == BATCH:
                _insert(store.engine, rows)
                rows = []
        if rows:
            _insert(store.engine, rows)
        with store.session() as session:
            stored = len(session.execute(select(Image.id)).all())
        if stored != len(paths):
            raise SystemExit(f"expected {len(paths)} rows, found {stored}")
    finally:
        store.close()


def _row(
    root_id: int, relpath: bytes, st: os.stat_result, params: HashParams, blob: bytes
) -> dict[str, object]:
    return {
        "root_id": root_id,
        "relpath": relpath,
        "display_path": display(relpath),
        "status": PRESENT,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "device": st.st_dev,
        "inode": st.st_ino,
        "content_hash": secrets.token_bytes(32),
        "width": 4000,
        "height": 3000,
        "format": "JPEG",
        "mode": "RGB",
        "bit_depth": 8,
        "lossless": False,
        "frames": 1,
        "orientation": 1,
        "taken_at": None,
        "camera_make": None,
        "camera_model": None,
        "exif_tags": 0,
        "hash_size": params.hash_size,
        "phash": blob,
        "dhash": blob,
        "ahash": blob,
        "whash": blob,
        "sharpness": 1.0,
        "low_information": False,
        "colour": bytes(48),
        "thumb": bytes(1024),
        "indexed_at": _now(),
    }


def _insert(engine: object, rows: list[dict[str, object]]) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(Image), rows)


def _now() -> datetime:
    return datetime.now()


def reindex(
    root: Path, db: Path, strace_log: Path | None = None
) -> tuple[float, dict[str, object]]:
    command = [sys.executable, "-m", "dedupdb", "index", str(root), "--db", str(db)]
    command += ["--json", "--quiet"]
    if strace_log is not None:
        command = ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(strace_log)]
        command += [sys.executable, "-m", "dedupdb", "index", str(root), "--db", str(db)]
        command += ["--json", "--quiet"]
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    summary = json.loads(done.stdout)
    summary["cpu_seconds"] = _children_cpu() - cpu
    return seconds, summary


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def files_opened(strace_log: Path, root: Path) -> list[str]:
    """Paths below the library opened other than as folders (O_DIRECTORY)."""
    opened = []
    pattern = re.compile(r'open(?:at)?\([^"]*"([^"]+)", ([A-Z_|]+)')
    for line in strace_log.read_text(errors="replace").splitlines():
        match = pattern.search(line)
        if match and match.group(1).startswith(str(root)) and "O_DIRECTORY" not in match.group(2):
            opened.append(match.group(1))
    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="use the library already built in --workdir"
    )
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="dedupdb-reindex-"))
    root, db = workdir / "library", workdir / "index.sqlite"
    try:
        started = time.perf_counter()
        if args.reuse and db.exists():
            print(f"Reusing the library and database in {workdir}.\n")
        else:
            if root.exists() or db.exists():
                raise SystemExit(f"{workdir} is not empty: give --reuse or another --workdir")
            paths = build_library(root, args.files)
            fill_database(db, root, paths)
        setup = time.perf_counter() - started
        reindex(root, db)  # warm-up: page cache for the folders and the database
        runs = []
        for _ in range(args.repeats):
            seconds, summary = reindex(root, db)
            processed = sum(int(str(summary[k])) for k in PROCESSED)
            if summary["unchanged"] != args.files or processed != 0:
                raise SystemExit(f"the re-index did work: {summary}")
            runs.append((seconds, float(str(summary["seconds"])), float(summary["cpu_seconds"])))
        opened: list[str] | None = None
        if shutil.which("strace"):
            log = workdir / "strace.log"
            reindex(root, db, log)
            opened = files_opened(log, root)
        wall = statistics.median(r[0] for r in runs)
        own = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(f"Re-index of {args.files:,} unchanged files (built and indexed in {setup:.0f} s), "
              f"median of {args.repeats} runs:\n")  # fmt: skip
        print("| measure | seconds |\n|---|---:|")
        print(f"| `dedupdb index` command, wall time (start-up included) | {wall:.2f} |")
        print(f"| the run's own time (walk, compare, record the run) | {own:.2f} |")
        print(f"| CPU time of the command (user + system) | {cpu:.2f} |")
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        verdict = "met" if wall < 5 else "missed"
        print(f"\nGoal (under 5 s, wall): {verdict}; load average {load}.", end=" ")
        if opened is None:
            print("strace is not installed: the files opened were not checked.")
        else:
            print(f"Files of the library opened during a traced run: {len(opened)}.")
            for path in opened[:10]:
                print(f"- {path}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
