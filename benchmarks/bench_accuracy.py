"""Accuracy of dedupdb's matching on the shared benchmark corpus, scored by shared/bench/score.py.

    python benchmarks/bench_accuracy.py [--corpus ../shared/corpus] [--db /tmp/corpus.sqlite]
        [--hashes phash,dhash] [--thresholds 4-16] [--out /tmp/dedupdb-accuracy]

Indexes the corpus into the database when it is not there yet (``dedupdb index CORPUS --db DB
--exclude scale``: scale/ holds the speed photos, which the truth does not list), then for every
(hash, threshold, rotations, guards) setting writes the clusters that ``find_clusters`` returns
as a JSON list of path groups (what score.py reads: a cluster stands for all its pairs), scores
it, and prints one line per setting (``2nd``: the second hash whose matches are added, at its
default threshold). ``--pairs`` also scores the raw pairs before clustering, ``--single`` the
first hash alone.
The last lines give the best F1 and its full score; the defaults in dedupdb/match.py come from
this table (see README, "Matching accuracy", for why the default is not simply the best F1).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dedupdb.cluster import build_clusters
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import MatchOptions
from dedupdb.report import find_pairs
from dedupdb.store import Store, open_store
from dedupdb.store.schema import Image, Root

HERE = Path(__file__).resolve().parent
ROTATION_KINDS = ("rot90", "rot180", "rot270", "hflip", "exif_rot90")


def load_score(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("score", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_paths(store: Store) -> dict[int, str]:
    with store.session() as session:
        rows = session.execute(select(Image.id, Root.path, Image.relpath).join(Root)).all()
    return {i: os.fsdecode(os.path.join(root, rel)) for i, root, rel in rows}


def parse_range(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpus")
    parser.add_argument(
        "--score", type=Path, default=None, help="score.py (default: beside corpus)"
    )
    parser.add_argument("--db", default="/tmp/dedupdb-accuracy.sqlite")
    parser.add_argument("--hashes", default="phash,dhash,ahash,whash")
    parser.add_argument("--thresholds", default="4-16")
    parser.add_argument("--no-rotations", action="store_true", help="also score --no-rotations")
    parser.add_argument("--no-guards", action="store_true", help="also score without guards")
    parser.add_argument("--ssim", type=float, default=None, help="also score with this --ssim")
    parser.add_argument("--pairs", action="store_true", help="also score raw pairs")
    parser.add_argument("--single", action="store_true", help="also score without 2nd hash")
    parser.add_argument("--out", type=Path, default=Path("/tmp/dedupdb-accuracy"))
    args = parser.parse_args()

    truth_path = args.corpus / "truth.json"
    if not truth_path.exists():
        sys.exit(f"no corpus at {args.corpus}: build it with shared/bench/make_corpus.py")
    score_path = args.score or next(
        (
            p
            for p in (
                args.corpus.parent / "bench" / "score.py",
                Path("/work/shared/bench/score.py"),
            )
            if p.exists()
        ),
        None,
    )
    if score_path is None:
        sys.exit("cannot find score.py: pass --score")
    score = load_score(score_path)
    truth = json.loads(truth_path.read_text())
    known = set(truth["files"])
    root = truth_path.resolve().parent

    store = open_store(args.db)
    with store.session() as session:
        indexed = session.execute(select(Image.id).limit(1)).first() is not None
    if not indexed:
        started = time.perf_counter()
        summary = index(store, args.corpus, IndexOptions(excludes=("scale",)))
        print(f"indexed {summary.new} files in {time.perf_counter() - started:.1f} s")
    paths = image_paths(store)
    args.out.mkdir(parents=True, exist_ok=True)

    settings = []
    for algorithm in args.hashes.split(","):
        for threshold in parse_range(args.thresholds):
            settings.append(MatchOptions(hash=algorithm, threshold=threshold))
            if args.single:
                settings.append(MatchOptions(hash=algorithm, threshold=threshold, second_hash=None))
            if args.no_rotations:
                settings.append(MatchOptions(hash=algorithm, threshold=threshold, rotations=False))
            if args.no_guards:
                settings.append(MatchOptions(hash=algorithm, threshold=threshold, guards=False))
            if args.ssim is not None:
                settings.append(MatchOptions(hash=algorithm, threshold=threshold, ssim=args.ssim))

    header = (f"{'hash':<6} {'2nd':<5} {'thr':>3} {'rot':>3} {'grd':>3} {'ssim':>4} {'what':<8} "
              f"{'P':>6} {'R':>6} {'F1':>6} {'F1-nr':>6} {'rotmin':>6} {'negpairs':>8} "
              f"{'negfam':>6} {'sec':>5}")  # fmt: skip
    print(header)
    results = []
    for options in settings:
        started = time.perf_counter()
        pairs = find_pairs(store, options)
        clusters = build_clusters(pairs)
        elapsed = time.perf_counter() - started
        outputs = {"clusters": [[paths[m] for m in c.members] for c in clusters]}
        if args.pairs:
            outputs["pairs"] = [[paths[p.a], paths[p.b]] for p in pairs]
        for what, groups in outputs.items():
            name = (f"{options.hash}-{options.second_hash}-t{options.threshold}"
                    f"-r{int(options.rotations)}"
                    f"-g{int(options.guards)}-s{options.ssim}-{what}.json")  # fmt: skip
            (args.out / name).write_text(json.dumps(groups))
            declared, _unknown = score.declared_pairs(groups, root, known)
            result = score.score(truth, declared)
            per_kind = result["recall_per_kind"]
            rot_min = min(per_kind[k]["recall"] for k in ROTATION_KINDS if k in per_kind)
            neg = result["hard_negatives"]
            row = (options, what, result, rot_min, elapsed)
            results.append(row)
            second = options.resolved_second()
            print(f"{options.hash:<6} {second[0] if second else '-':<5} "
                  f"{options.threshold:>3} {int(options.rotations):>3} "
                  f"{int(options.guards):>3} {options.ssim or '-':>4} {what:<8} "
                  f"{result['precision']:>6.3f} {result['recall']:>6.3f} {result['f1']:>6.3f} "
                  f"{result['without_recomposed']['f1']:>6.3f} {rot_min:>6.3f} "
                  f"{neg['declared_pairs']:>8} {neg['families_joined']:>6} {elapsed:>5.2f}",
                  flush=True)  # fmt: skip
    best = max((r for r in results if r[1] == "clusters"), key=lambda r: r[2]["f1"])
    options, _, result, _, _ = best
    print(
        f"* best F1 (clusters): {options.hash} threshold {options.threshold} "
        f"second hash {options.second_hash} "
        f"rotations={options.rotations} guards={options.guards} ssim={options.ssim}: "
        f"F1 {result['f1']:.3f}"
    )
    print(score.report(result, 0))


if __name__ == "__main__":
    main()
