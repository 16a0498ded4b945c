"""Generate a folder of photo-like images with duplicates, for the end-to-end CI jobs.

    python .github/scripts/make_photos.py DIR [--count N]

Writes N different pictures (smooth shapes and gradients, so perceptual hashes tell them
apart), and for every fourth one an exact copy, a resized re-encoded copy and a rotated copy.
Needs Pillow and NumPy only.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def picture(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for _ in range(3):
        field = np.zeros((height, width))
        for _ in range(6):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            radius = rng.uniform(0.1, 0.5) * max(width, height)
            field += rng.uniform(-1, 1) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / radius**2)
        field += rng.uniform(-1, 1) * x / width + rng.uniform(-1, 1) * y / height
        channels.append(field)
    arr = np.stack(channels, axis=-1)
    arr = (arr - arr.min()) / (np.ptp(arr) or 1.0) * 230 + 10
    arr += rng.normal(0, 3, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    for n in range(args.count):
        folder = args.folder / f"{2000 + n % 7}" / f"album-{n % 13:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        original = folder / f"IMG_{n:05d}.jpg"
        image = picture(n)
        image.save(original, quality=92)
        if n % 4 == 0:
            copies = args.folder / "copies"
            copies.mkdir(exist_ok=True)
            shutil.copyfile(original, copies / f"IMG_{n:05d} (1).jpg")
            image.resize((320, 240)).save(copies / f"IMG_{n:05d}-small.jpg", quality=75)
            image.rotate(90, expand=True).save(copies / f"IMG_{n:05d}-rotated.png")
    print(f"wrote {sum(1 for p in args.folder.rglob('*') if p.is_file())} files to {args.folder}")


if __name__ == "__main__":
    main()
