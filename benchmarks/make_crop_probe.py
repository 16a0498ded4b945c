"""Build a crop probe: the held-out pictures cut in many ways, to measure crops in general.

    python benchmarks/make_crop_probe.py OUTDIR [--shared ../shared/bench] [--jobs J]

The held-out corpus (``make_heldout.py``) crops exactly 10, 15 and 20 % off every side, which
are exactly some of the windows whose hashes the index stores; a private corpus's crops need
not be. This builds the same held-out families (their shipped originals, look-alike families
as hard negatives) with copies cut in other ways: centred crops of 5 to 30 % a side, crops to
another aspect ratio (sides only, top and bottom only), off-centre crops (a corner, one side,
a shifted window, the held-out one) and a crop that was then turned 90 degrees. Every copy is
a JPEG at quality 95. Measure it as the held-out corpus; crops of different windows are not
expected to pair with each other, so read the recall per kind (pairs with the original):

    dedupdb index OUTDIR --db /tmp/probe.sqlite
    dedupdb report --db /tmp/probe.sqlite --json /tmp/probe.json --quiet
    python benchmarks/score_report.py OUTDIR/truth.json /tmp/probe.json --kinds
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_heldout import HERE, Transform, crop_box, jpeg, load_make_corpus  # a sibling script

SALT = "crop-probe-v1"

# (left, top, right, bottom) fractions cut off
CUTS: dict[str, tuple[float, float, float, float]] = {
    "crop_05": (0.05, 0.05, 0.05, 0.05),
    "crop_075": (0.075, 0.075, 0.075, 0.075),
    "crop_125": (0.125, 0.125, 0.125, 0.125),
    "crop_175": (0.175, 0.175, 0.175, 0.175),
    "crop_25": (0.25, 0.25, 0.25, 0.25),
    "crop_30": (0.30, 0.30, 0.30, 0.30),
    "sides_10": (0.10, 0.0, 0.10, 0.0),
    "topbottom_10": (0.0, 0.10, 0.0, 0.10),
    "sides_15": (0.15, 0.0, 0.15, 0.0),
    "corner_topleft_20": (0.0, 0.0, 0.20, 0.20),
    "corner_bottomright_20": (0.20, 0.20, 0.0, 0.0),
    "left_30": (0.30, 0.0, 0.0, 0.0),
    "shifted_10": (0.15, 0.05, 0.05, 0.15),
    "offcentre": (0.18, 0.02, 0.04, 0.14),
}


def cut(fractions: tuple[float, float, float, float]) -> Transform:
    return lambda im: jpeg(crop_box(im, *fractions))


def transforms() -> dict[str, Transform]:
    out = {name: cut(fractions) for name, fractions in CUTS.items()}
    out["crop_10_rot90"] = lambda im: jpeg(
        crop_box(im, 0.1, 0.1, 0.1, 0.1).transpose(Image.Transpose.ROTATE_90)
    )
    return out


def main() -> None:
    shared = HERE.parent.parent / "shared" / "bench"
    for i, arg in enumerate(sys.argv):
        if arg == "--shared" and i + 1 < len(sys.argv):
            shared = Path(sys.argv[i + 1])
            del sys.argv[i : i + 2]
            break
    make_corpus = load_make_corpus(shared)
    make_corpus.main(split="heldout", transforms=transforms(), salt=SALT)


if __name__ == "__main__":
    main()
