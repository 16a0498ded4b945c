"""Score a report's keepers against a corpus's truth.json: is the keeper the original?

    python benchmarks/score_keeper.py TRUTH.json REPORT.json [--json] [--list]

For every cluster of the report that holds a family's original (kind "original" in the
truth), the keeper is right when it is that original or a byte-identical copy of it (same
content hash). Prints the share of right keepers and, with ``--list``, each wrong one with
the kind of file kept and the report's reasons.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def _relative(path: str, root: Path) -> str:
    return os.path.relpath(os.path.realpath(path), os.path.realpath(root))


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def score(truth: dict[str, Any], report: dict[str, Any], root: Path) -> dict[str, Any]:
    files = truth["files"]
    originals = {e["family"]: p for p, e in files.items() if e["kind"] == "original"}
    digests: dict[str, str] = {}

    def digest(rel: str) -> str:
        if rel not in digests:
            digests[rel] = _digest(root / rel)
        return digests[rel]

    right, wrong = 0, []
    for cluster in report["clusters"]:
        members = {m["image_id"]: _relative(m["path"], root) for m in cluster["members"]}
        held = [r for r in members.values() if r in files and files[r]["kind"] == "original"]
        if not held:
            continue
        kept = members[cluster["keeper"]]
        original = originals[files[held[0]]["family"]]
        if kept == original or digest(kept) == digest(original):
            right += 1
        else:
            kind = files[kept]["kind"] if kept in files else "?"
            wrong.append({"kept": kept, "kind": kind, "original": original,
                          "reasons": cluster["reasons"]})  # fmt: skip
    total = right + len(wrong)
    return {"clusters": total, "right": right, "share": right / total if total else 1.0,
            "wrong": wrong}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("truth", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the wrong keepers")
    args = parser.parse_args()
    truth = json.loads(args.truth.read_text())
    report = json.loads(args.report.read_text())
    result = score(truth, report, args.truth.parent)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"keeper is the original (or a byte copy): {result['right']} of {result['clusters']} "
          f"clusters ({100 * result['share']:.1f} %)")  # fmt: skip
    if args.list:
        for item in result["wrong"]:
            print(
                f"  kept {item['kept']} ({item['kind']}) over {item['original']}: "
                f"{'; '.join(item['reasons'])}"
            )


if __name__ == "__main__":
    main()
