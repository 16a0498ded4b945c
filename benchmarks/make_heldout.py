"""Build a held-out corpus with other edits than the public one, like the private corpus.

    python benchmarks/make_heldout.py OUTDIR [--shared ../shared/bench] [--jobs J]

The issue's private corpus judges dedupdb on edits the public corpus does not have: heavier
crops, added borders and padding, small tilts, other formats and tone changes. This builds
such a corpus from the *held-out* half of shared/bench's picture families (other pictures than
the public half, with their own light/dark look-alike families as hard negatives), through
``make_corpus.main(split="heldout", ...)``, so its truth.json is scored by the same score.py.
Each family gets its shipped originals and one copy per transform below (JPEG at quality 95
unless the transform is about the format). Nothing is copied into the repository: OUTDIR is
any folder, e.g. /work/heldout.

Measure it through the command line a user runs (see README, "Matching accuracy"):

    dedupdb index OUTDIR --db /tmp/heldout.sqlite
    dedupdb report --db /tmp/heldout.sqlite --json /tmp/heldout.json --quiet
    python benchmarks/score_report.py OUTDIR/truth.json /tmp/heldout.json
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

HERE = Path(__file__).resolve().parent
SALT = "heldout-robust-v1"
JPEG95: tuple[str, dict[str, Any]] = ("JPEG", {"quality": 95})
Transform = Callable[[Image.Image], tuple[Image.Image, str, dict[str, Any]]]


def load_make_corpus(shared: Path) -> ModuleType:
    path = shared / "make_corpus.py"
    spec = importlib.util.spec_from_file_location("make_corpus", path)
    if spec is None or spec.loader is None or not path.exists():
        raise SystemExit(f"no make_corpus.py in {shared}: pass --shared")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- geometry


def crop_box(im: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    """Cut these fractions of the width (left, right) and height (top, bottom) off."""
    w, h = im.size
    box = (round(w * left), round(h * top), w - round(w * right), h - round(h * bottom))
    return im.crop(box) if box[2] > box[0] and box[3] > box[1] else im


def framed(im: Image.Image, fraction: float, colour: tuple[int, int, int]) -> Image.Image:
    """A frame of ``fraction`` of the longer side around the picture."""
    border = max(1, round(max(im.size) * fraction))
    return ImageOps.expand(im, border=border, fill=colour)


def padded(im: Image.Image, aspect: float, colour: tuple[int, int, int]) -> Image.Image:
    """Bars (letterbox above and below, or pillarbox left and right) to reach width/height
    ``aspect``, the picture centred."""
    w, h = im.size
    # Too wide: bars above and below; too tall: left and right.
    size = (w, round(w / aspect)) if w / h > aspect else (round(h * aspect), h)
    canvas = Image.new("RGB", size, colour)
    canvas.paste(im, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def tilted(im: Image.Image, degrees: float) -> Image.Image:
    """Turned by ``degrees`` (counter-clockwise), then cropped to the largest centred
    rectangle of the same aspect ratio that holds no wedge of background."""
    w, h = im.size
    turned = im.rotate(degrees, Image.Resampling.BICUBIC, expand=False)
    a = np.radians(abs(degrees))
    # A centred w' x h' box (w'/h' = w/h) fits the turned w x h picture when
    # w' cos a + h' sin a <= w and w' sin a + h' cos a <= h.
    scale = min(w / (w * np.cos(a) + h * np.sin(a)), h / (w * np.sin(a) + h * np.cos(a)))
    cw, ch = max(1, int(w * scale) - 2), max(1, int(h * scale) - 2)
    left, top = (w - cw) // 2, (h - ch) // 2
    return turned.crop((left, top, left + cw, top + ch))


# ---------------------------------------------------------------- formats


def gif(im: Image.Image) -> tuple[Image.Image, str, dict[str, Any]]:
    """256-colour palette with Floyd-Steinberg dithering, as GIF."""
    return im.quantize(256, dither=Image.Dither.FLOYDSTEINBERG), "GIF", {}


def png16(im: Image.Image) -> tuple[Image.Image, str, dict[str, Any]]:
    """16-bit PNG. Pillow writes 16 bits per sample only for grayscale (mode I;16)."""
    gray = np.asarray(im.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(gray.astype("<u2")), "PNG", {}


def can_write(fmt: str) -> bool:
    try:
        Image.new("RGB", (16, 16)).save(io.BytesIO(), fmt)
    except (KeyError, OSError, ValueError):
        return False
    return True


# ---------------------------------------------------------------- tones


def gamma(im: Image.Image, value: float) -> Image.Image:
    table = [round(255 * (i / 255) ** value) for i in range(256)]
    return im.point(table * len(im.getbands()))


def sepia(im: Image.Image) -> Image.Image:
    rgb = np.asarray(im, dtype=np.float64)
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(rgb @ matrix.T, 0, 255).astype(np.uint8))


def white_balance(im: Image.Image, red: float, blue: float) -> Image.Image:
    rgb = np.asarray(im, dtype=np.float64) * np.array([red, 1.0, blue])
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


def jpeg(im: Image.Image) -> tuple[Image.Image, str, dict[str, Any]]:
    return im, *JPEG95


WHITE, BLACK, MAT = (255, 255, 255), (0, 0, 0), (196, 172, 132)


def transforms() -> dict[str, Transform]:
    out: dict[str, Transform] = {
        # heavier crops
        "crop_10": lambda im: jpeg(crop_box(im, 0.10, 0.10, 0.10, 0.10)),
        "crop_15": lambda im: jpeg(crop_box(im, 0.15, 0.15, 0.15, 0.15)),
        "crop_20": lambda im: jpeg(crop_box(im, 0.20, 0.20, 0.20, 0.20)),
        "crop_offcentre": lambda im: jpeg(crop_box(im, 0.18, 0.02, 0.04, 0.14)),
        # added borders and padding
        "border_white": lambda im: jpeg(framed(im, 0.05, WHITE)),
        "letterbox_black": lambda im: jpeg(padded(im, im.width / im.height * 0.75, BLACK)),
        "pillarbox_black": lambda im: jpeg(padded(im, im.width / im.height * 4 / 3, BLACK)),
        "mat_colour": lambda im: jpeg(framed(im, 0.08, MAT)),
        # small tilts
        "tilt_1": lambda im: jpeg(tilted(im, 1.0)),
        "tilt_2": lambda im: jpeg(tilted(im, -2.0)),
        "tilt_3": lambda im: jpeg(tilted(im, 3.0)),
        # other formats
        "tiff": lambda im: (im, "TIFF", {"compression": "tiff_lzw"}),
        "bmp": lambda im: (im, "BMP", {}),
        "gif": gif,
        "webp_q20": lambda im: (im, "WEBP", {"quality": 20}),
        "png16": png16,
        # tone changes
        "gamma_07": lambda im: jpeg(gamma(im, 0.7)),
        "gamma_14": lambda im: jpeg(gamma(im, 1.4)),
        "contrast_130": lambda im: jpeg(ImageEnhance.Contrast(im).enhance(1.3)),
        "contrast_70": lambda im: jpeg(ImageEnhance.Contrast(im).enhance(0.7)),
        "saturation_140": lambda im: jpeg(ImageEnhance.Color(im).enhance(1.4)),
        "saturation_60": lambda im: jpeg(ImageEnhance.Color(im).enhance(0.6)),
        "bright_85": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(0.85)),
        "autocontrast": lambda im: jpeg(ImageOps.autocontrast(im, cutoff=1)),
        "sepia": lambda im: jpeg(sepia(im)),
        "white_balance": lambda im: jpeg(white_balance(im, 1.08, 0.92)),
    }
    if can_write("HEIF"):
        out["heic"] = lambda im: (im, "HEIF", {"quality": 80})
    if can_write("AVIF"):
        out["avif"] = lambda im: (im, "AVIF", {"quality": 60})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "bench")
    args, rest = parser.parse_known_args()
    make_corpus = load_make_corpus(args.shared)
    make_corpus.SUFFIXES.update(
        {"TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "HEIF": ".heic", "AVIF": ".avif"}
    )
    sys.argv = [sys.argv[0], *rest]
    make_corpus.main(split="heldout", transforms=transforms(), salt=SALT)


if __name__ == "__main__":
    main()
