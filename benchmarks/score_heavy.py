"""Score a `dedupdb report --json` on the heavy-edits corpus (make_heavy_corpus.py): shared/bench's
score.py figures, plus the joined pairs of each hard-negative group (documents, products, photos
whose screenshots share the phone chrome) and the kinds of named pairs (local features, toned
copies).

    python benchmarks/score_heavy.py OUTDIR/truth.json REPORT.json [--score SCORE_PY]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from score_report import HERE, load_score, report_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("truth", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--score", type=Path, default=HERE.parent.parent / "shared/bench/score.py")
    args = parser.parse_args()
    score = load_score(args.score)
    truth = json.loads(args.truth.read_text())
    report = json.loads(args.report.read_text())
    root = args.truth.resolve().parent
    pairs, unknown = score.declared_pairs(report_groups(report), root, set(truth["files"]))
    result = score.score(truth, pairs)
    print(score.report(result, unknown))
    family = {path: entry["family"] for path, entry in truth["files"].items()}
    joined: Counter[str] = Counter()
    possible: Counter[str] = Counter()
    members = Counter(family.values())
    for a, b in map(sorted, truth["hard_negatives"]):
        possible[a.split("/")[0]] += members[a] * members[b]
    for a, b in pairs:
        fa, fb = family[a], family[b]
        if fa != fb and sorted((fa, fb)) in truth["hard_negatives"]:
            joined[fa.split("/")[0]] += 1
    for group in sorted(possible):
        print(f"hard negatives, {group}: {joined[group]} of {possible[group]} pairs joined")
    kinds = Counter(
        p["kind"] for c in report["clusters"] for p in c.get("pairs", []) if p.get("kind")
    )
    print("pairs by kind (local features, toned copies):", dict(kinds) or "none")


if __name__ == "__main__":
    main()
