"""Score a `dedupdb report --json` file against a corpus's truth.json with shared/bench/score.py.

    python benchmarks/score_report.py TRUTH.json REPORT.json [--score ../shared/bench/score.py]
        [--kinds] [--json]

The report's clusters become the path groups score.py reads (a cluster stands for all its
pairs), so what is scored is exactly what a user's `dedupdb index` + `dedupdb report` found.
``--kinds`` prints one ``kind recall`` line per kind, for the README's tables.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def load_score(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("score", path)
    if spec is None or spec.loader is None or not path.exists():
        raise SystemExit(f"cannot load {path}: pass --score")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report_groups(report: dict[str, Any]) -> list[list[str]]:
    """One list of paths per cluster (non-UTF-8 paths come back through path_bytes_b64)."""
    groups = []
    for cluster in report["clusters"]:
        paths = []
        for member in cluster["members"]:
            if member.get("path_bytes_b64"):
                paths.append(os.fsdecode(base64.b64decode(member["path_bytes_b64"])))
            else:
                paths.append(member["path"])
        groups.append(paths)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("truth", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--score", type=Path, default=HERE.parent.parent / "shared" / "bench"
                        / "score.py")  # fmt: skip
    parser.add_argument("--kinds", action="store_true", help="print 'kind recall' lines only")
    parser.add_argument("--json", action="store_true", help="print score.py's figures as JSON")
    args = parser.parse_args()
    score = load_score(args.score)
    truth = json.loads(args.truth.read_text())
    report = json.loads(args.report.read_text())
    if report.get("schema") != "dedupdb-report":
        sys.exit(f"{args.report} is not a dedupdb report")
    root = args.truth.resolve().parent
    pairs, unknown = score.declared_pairs(report_groups(report), root, set(truth["files"]))
    result = score.score(truth, pairs)
    if args.json:
        print(json.dumps({**result, "unknown_paths": unknown}, indent=1))
    elif args.kinds:
        for kind, value in result["recall_per_kind"].items():
            print(f"{kind} {value['recall']:.3f}")
        neg = result["hard_negatives"]
        print(
            f"F1 {result['f1']:.3f} precision {result['precision']:.3f} "
            f"recall {result['recall']:.3f} hard_negative_pairs {neg['declared_pairs']}"
        )
    else:
        print(score.report(result, unknown))


if __name__ == "__main__":
    main()
