"""Check that two builds of dedupdb write the same reports for a corpus.

    python benchmarks/report_equivalence.py write CORPUS OUTDIR [--dedupdb PATH] [--backend-url URL]
    python benchmarks/report_equivalence.py compare OLDDIR NEWDIR

``write`` indexes CORPUS into a fresh SQLite database (or the database URL given) with the
``dedupdb`` executable given (default: the one on PATH), then writes the JSON and CSV reports for
each option set in ``VARIANTS`` into OUTDIR, with the run-dependent fields removed
(``generated_at``, the database's location). ``compare`` exits 1 and prints the first
difference of every report that differs, 0 when all are identical.

A refactoring that must not change what users see runs ``write`` with the old build and the
new one and then ``compare`` (see docs/benchmarks.md, "Same reports before and after").
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

VARIANTS: dict[str, list[str]] = {
    "default": [],
    "ssim": ["--ssim", "0.8"],
    "prefer": ["--prefer", "DCIM", "--prefer", "*/originals/*", "--avoid", "Downloads"],
    "no-rotations": ["--no-rotations"],
    "exact": ["--exact"],
    "turned-crops": ["--turned-crops"],
}
RUN_FIELDS = ("generated_at", "database", "db")
# A pair read the other way round: its transform undone. Reflections and the half turn are
# their own inverse.
INVERSE = {"rot90": "rot270", "rot270": "rot90", "crop": "uncrop", "uncrop": "crop"}


def _scrub(value: Any) -> Any:
    """The report without the fields that differ from one run to the next."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in RUN_FIELDS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _by_path(report: dict[str, Any]) -> dict[str, Any]:
    """The report with every image id replaced by its path.

    Image ids are given in the order workers finish files, which differs from run to run (and
    so does which end of a pair is ``a``): what must not change is which files are grouped,
    kept and paired, and why.
    """
    for cluster in report.get("clusters", []):
        paths = {m["image_id"]: m["path"] for m in cluster["members"]}
        cluster["keeper"] = paths.get(cluster["keeper"], cluster["keeper"])
        for member in cluster["members"]:
            member.pop("image_id", None)
        pairs = []
        for pair in cluster.get("pairs", []):
            a, b = paths.get(pair["a"], pair["a"]), paths.get(pair["b"], pair["b"])
            if str(a) > str(b):
                a, b = b, a
                pair["transform"] = INVERSE.get(pair["transform"], pair["transform"])
            pairs.append({**pair, "a": a, "b": b})
        cluster["pairs"] = sorted(pairs, key=lambda p: (str(p["a"]), str(p["b"])))
    return report


def _csv_without_ids(text: str) -> str:
    """The CSV without its image_id column (see ``_by_path``)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "image_id" not in rows[0]:
        return text
    column = rows[0].index("image_id")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([r[:column] + r[column + 1 :] for r in rows])
    return out.getvalue()


def write(corpus: Path, outdir: Path, dedupdb: str, url: str | None) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dedupdb-equiv-") as tmp:
        db = url or str(Path(tmp) / "equiv.sqlite")
        env = {**os.environ, "NO_COLOR": "1"}
        subprocess.run([dedupdb, "index", str(corpus), "--db", db, "--quiet"], check=True, env=env)
        for name, options in VARIANTS.items():
            report = Path(tmp) / f"{name}.json"
            table = outdir / f"{name}.csv"
            command = [dedupdb, "report", "--db", db, "--json", str(report), "--csv", str(table)]
            subprocess.run([*command, "--quiet", *options], check=True, env=env)
            data = _by_path(_scrub(json.loads(report.read_bytes())))
            text = json.dumps(data, indent=1, sort_keys=True)
            (outdir / f"{name}.json").write_text(text + "\n")
            table.write_text(_csv_without_ids(table.read_text()))
            clusters = len(data.get("clusters", []))
            print(f"{name:14} {clusters:5} clusters", flush=True)


def compare(old: Path, new: Path) -> int:
    differing = 0
    names = sorted({p.name for p in old.iterdir()} | {p.name for p in new.iterdir()})
    for name in names:
        a, b = old / name, new / name
        if not a.exists() or not b.exists():
            print(f"{name}: only in {'new' if not a.exists() else 'old'}")
            differing += 1
            continue
        left, right = a.read_text().splitlines(), b.read_text().splitlines()
        if left == right:
            print(f"{name}: identical ({len(left)} lines)")
            continue
        differing += 1
        first = next((i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y), None)
        first = min(len(left), len(right)) if first is None else first
        print(f"{name}: DIFFERS at line {first + 1}")
        print(f"  old: {left[first] if first < len(left) else '<end>'}")
        print(f"  new: {right[first] if first < len(right) else '<end>'}")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("corpus", type=Path)
    w.add_argument("outdir", type=Path)
    w.add_argument("--dedupdb", default=shutil.which("dedupdb") or "dedupdb")
    w.add_argument("--backend-url", default=None, help="index into this database URL instead")
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.corpus, args.outdir, args.dedupdb, args.backend_url)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
