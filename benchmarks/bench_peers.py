"""dedupdb and its peers side by side on the shared benchmark corpus, scored by score.py.

    python benchmarks/bench_peers.py [--corpus ../shared/corpus] [--db /tmp/corpus.sqlite]
        [--peers-python /work/venv-peers/bin/python]

Each tool runs with its default settings on the corpus's files (truth.json's list; scale/ is
left out) and its groups are scored the same way:
- dedupdb: ``find_clusters`` with default ``MatchOptions`` (the database is indexed first when
  empty);
- findimagedupes (Debian package ``findimagedupes``), default threshold, when installed;
- imagededup's PHash and DHash ``find_duplicates`` (defaults: max distance 10), run by
  ``--peers-python``: a virtualenv with ``pip install --no-deps imagededup`` and its hashing
  dependencies (numpy, scipy, PyWavelets, Pillow, tqdm, scikit-learn, matplotlib). Its CNN
  module needs torch and torchvision, which the hashing methods do not use, so it is not
  imported (placeholder package modules stand in for ``imagededup.methods`` and ``.utils``,
  whose ``__init__`` import it).
A tool that is not installed is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_accuracy import ROTATION_KINDS, image_paths, load_score

from dedupdb.indexing import IndexOptions, index
from dedupdb.match import MatchOptions
from dedupdb.report import find_clusters
from dedupdb.store import open_store

HERE = Path(__file__).resolve().parent

IMAGEDEDUP = r"""
import json, sys, types, importlib.util
from pathlib import Path
spec = importlib.util.find_spec("imagededup")
for package in ("methods", "utils"):  # their __init__ imports the torch-based CNN modules
    placeholder = types.ModuleType("imagededup." + package)
    placeholder.__path__ = [str(Path(spec.origin).parent / package)]
    sys.modules["imagededup." + package] = placeholder
from imagededup.methods.hashing import PHash, DHash
files = json.load(open(sys.argv[1]))
root = Path(sys.argv[2])
method = {"phash": PHash, "dhash": DHash}[sys.argv[3]](verbose=False)
encodings = {}
for rel in files:
    value = method.encode_image(image_file=str(root / rel))
    if value:
        encodings[rel] = value
found = method.find_duplicates(encoding_map=encodings)
print(json.dumps([[k, *v] for k, v in found.items() if v]))
"""


def run_findimagedupes(files: list[str], root: Path) -> list[list[str]] | None:
    try:
        done = subprocess.run(
            ["findimagedupes", "-q", "-"],
            input="\n".join(str(root / f) for f in files),
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError:
        return None
    return [line.split() for line in done.stdout.splitlines() if line.strip()]


def run_imagededup(python: str, files: list[str], root: Path, which: str) -> list[list[str]] | None:
    if not Path(python).exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump(files, listing)
    done = subprocess.run(
        [python, "-c", IMAGEDEDUP, listing.name, str(root), which],
        capture_output=True,
        text=True,
    )
    Path(listing.name).unlink()
    if done.returncode != 0:
        print(f"imagededup {which} failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    groups: list[list[str]] = json.loads(done.stdout)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpus")
    parser.add_argument("--score", type=Path, default=Path("/work/shared/bench/score.py"))
    parser.add_argument("--db", default="/tmp/dedupdb-accuracy.sqlite")
    parser.add_argument("--peers-python", default="/work/venv-peers/bin/python")
    args = parser.parse_args()
    truth_path = args.corpus / "truth.json"
    if not truth_path.exists():
        sys.exit(f"no corpus at {args.corpus}")
    score = load_score(args.score)
    truth = json.loads(truth_path.read_text())
    root = truth_path.resolve().parent
    files = sorted(truth["files"])

    store = open_store(args.db)
    if not image_paths(store):
        index(store, args.corpus, IndexOptions(excludes=("scale",)))
    paths = image_paths(store)

    def dedupdb_groups() -> list[list[str]]:
        return [[paths[m] for m in c.members] for c in find_clusters(store, MatchOptions())]

    tools = {
        "dedupdb (defaults)": dedupdb_groups,
        "imagededup PHash": lambda: run_imagededup(args.peers_python, files, root, "phash"),
        "imagededup DHash": lambda: run_imagededup(args.peers_python, files, root, "dhash"),
        "findimagedupes": lambda: run_findimagedupes(files, root),
    }
    print("| tool | precision | recall | F1 | min rotation/flip recall | hard-negative pairs "
          "| seconds |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for name, run in tools.items():
        started = time.perf_counter()
        groups = run()
        elapsed = time.perf_counter() - started
        if groups is None:
            print(f"| {name} | skipped (not installed) | | | | | |")
            continue
        declared, _ = score.declared_pairs(groups, root, set(truth["files"]))
        result = score.score(truth, declared)
        per_kind = result["recall_per_kind"]
        rot = min(per_kind[k]["recall"] for k in ROTATION_KINDS if k in per_kind)
        print(f"| {name} | {result['precision']:.3f} | {result['recall']:.3f} | "
              f"{result['f1']:.3f} | {rot:.3f} | {result['hard_negatives']['declared_pairs']} "
              f"| {elapsed:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
