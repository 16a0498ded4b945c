"""Build a corpus for the keeper: camera originals and the copies that compete with them.

    python benchmarks/make_keeper_corpus.py SOURCE_TRUTH.json OUTDIR [--longest 1600]
        [--shuffle-times SEED]

The pictures are the originals of a corpus built by shared/bench/make_corpus.py (its
truth.json names them): each becomes a camera original, a JPEG at quality 92 with the
camera's EXIF (make, model, date taken) in DCIM/100CANON, its longest side at most
``--longest`` pixels. Its copies, each in a folder such copies land in:

- ``png``, ``tiff``: lossless conversions of the original's decode (Downloads, export);
- ``resaved_q98``: the decode saved again at quality 98, no EXIF (edited);
- ``recompressed_q70``: the same at quality 70 (Telegram);
- ``resized_50``: half size, quality 80, no EXIF (WhatsApp Images);
- ``noisy``, ``sharpened``, ``denoised``: gaussian noise of 12 levels, an unsharp mask of
  250 %, a 3x3 median filter, each at quality 92 without EXIF (web);
- ``exact_copy``: the original's bytes as ``Copy of IMG_....jpg`` in backup, its time kept.

Files are written with the original oldest and each copy a minute later, as copying does;
``--shuffle-times SEED`` gives every file a random time instead (a copy that did not keep the
times, or a restore), to measure what the ranking does without the clock.

OUTDIR/truth.json has the format of make_corpus.py's (family, kind per file; no hard
negatives), so shared/bench/score.py and benchmarks/score_keeper.py read it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

T0 = 1_600_000_000  # the originals' time (2020-09-13)


def camera_exif(index: int) -> Image.Exif:
    exif = Image.Exif()
    exif[271], exif[272] = "Canon", "EOS 80D"
    exif[306] = f"2020:09:{1 + index % 28:02d} 10:{index % 60:02d}:00"
    return exif


def load(path: Path, longest: int) -> Image.Image:
    with Image.open(path) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return image


def write_family(outdir: Path, index: int, source: Path, longest: int) -> dict[str, str]:
    """The original and its copies; returns {relative path: kind}."""
    name = f"IMG_{1000 + index:04d}"
    files: dict[str, str] = {}

    def put(rel: str, kind: str, image: Image.Image | None, fmt: str | None = None,
            **options: object) -> Path:  # fmt: skip
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if image is not None:
            image.save(path, fmt, **options)
        files[rel] = kind
        return path

    original = put(f"DCIM/100CANON/{name}.jpg", "original", load(source, longest), "JPEG",
                   quality=92, exif=camera_exif(index))  # fmt: skip
    with Image.open(original) as im:
        pixels = im.convert("RGB")
    put(f"Downloads/{name}.png", "png", pixels, "PNG")
    put(f"export/{name}.tif", "tiff", pixels, "TIFF", compression="tiff_lzw")
    put(f"edited/{name}.jpg", "resaved_q98", pixels, "JPEG", quality=98)
    put(f"Telegram/{name}.jpg", "recompressed_q70", pixels, "JPEG", quality=70)
    half = pixels.resize((pixels.width // 2, pixels.height // 2), Image.Resampling.LANCZOS)
    put(f"WhatsApp Images/IMG-2020-WA{index:04d}.jpg", "resized_50", half, "JPEG", quality=80)
    rng = np.random.default_rng(index)
    noisy = np.asarray(pixels, dtype=np.float64) + rng.normal(0, 12, (pixels.height,
                                                                      pixels.width, 3))  # fmt: skip
    put(f"web/{name}-noisy.jpg", "noisy", Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)),
        "JPEG", quality=92)  # fmt: skip
    sharpened = pixels.filter(ImageFilter.UnsharpMask(radius=2, percent=250, threshold=0))
    put(f"web/{name}-sharp.jpg", "sharpened", sharpened, "JPEG", quality=92)
    put(f"web/{name}-clean.jpg", "denoised", pixels.filter(ImageFilter.MedianFilter(3)), "JPEG",
        quality=92)  # fmt: skip
    copy = put(f"backup/Copy of {name}.jpg", "exact_copy", None)
    shutil.copyfile(original, copy)
    return files


def set_times(outdir: Path, order: list[str], shuffle: int | None) -> None:
    """The original first, each copy a minute later (an exact copy kept the original's time);
    or, with a seed, random times within a year."""
    rng = random.Random(shuffle)
    for step, rel in enumerate(order):
        when = T0 + rng.randrange(365 * 86400) if shuffle is not None else T0 + 60 * step
        if shuffle is None and rel.startswith("backup/Copy of "):
            when = T0
        os.utime(outdir / rel, (when, when))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="truth.json of a make_corpus.py corpus")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--longest", type=int, default=1600)
    parser.add_argument("--shuffle-times", type=int, default=None, metavar="SEED")
    args = parser.parse_args()
    truth = json.loads(args.source.read_text())
    originals = sorted(p for p, e in truth["files"].items() if e["kind"] == "original")
    files: dict[str, dict[str, str]] = {}
    for index, rel in enumerate(originals):
        family = truth["files"][rel]["family"]
        written = write_family(args.outdir, index, args.source.parent / rel, args.longest)
        set_times(args.outdir, list(written), args.shuffle_times)
        files.update({path: {"family": family, "kind": kind} for path, kind in written.items()})
    out = {"files": dict(sorted(files.items())), "hard_negatives": []}
    (args.outdir / "truth.json").write_text(json.dumps(out, indent=1))
    print(f"{args.outdir}: {len(originals)} families, {len(files)} files")


if __name__ == "__main__":
    main()
