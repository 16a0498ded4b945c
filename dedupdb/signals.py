"""Measurements of a decoded picture, stored at index time so the report never decodes again.

Sharpness and low information feed the keeper ranking and the false-positive guards; the colour
signature lets the report tell a light from a dark version of one picture (grayscale hashes
cannot); the thumbnail lets the report check candidate pairs with SSIM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

# A picture whose 64x64 grayscale square has a standard deviation below this (on 0..255) is
# near-uniform: its hash is noise and would match every other blank picture.
LOW_INFORMATION_STD = 3.0
SIGNATURE_GRID = 4
THUMB_SIZE = 32


@dataclass(frozen=True)
class Signals:
    """Per-picture measurements; the blobs are small fixed-size uint8 arrays."""

    sharpness: float
    low_information: bool
    colour: bytes  # SIGNATURE_GRID x SIGNATURE_GRID x RGB means
    thumb: bytes  # THUMB_SIZE x THUMB_SIZE grayscale, for SSIM


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the working picture's luminance (0..1 scale) x 10^4.

    Measured on the reduced-scale picture (longest side 256 px), so a downscaled copy is not
    rewarded for its resolution (that is ranked separately) but a blurred one scores lower.
    """
    gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255.0
    return float(ndimage.laplace(gray).var() * 1e4)


def colour_signature(rgb: np.ndarray) -> bytes:
    """Mean RGB over a 4x4 grid (48 bytes)."""
    image = Image.fromarray(rgb).resize((SIGNATURE_GRID, SIGNATURE_GRID), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8).tobytes()


def thumbnail(gray: np.ndarray) -> bytes:
    """32x32 grayscale square (1024 bytes)."""
    image = Image.fromarray(gray).resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8).tobytes()


def measure(rgb: np.ndarray, gray: np.ndarray) -> Signals:
    """All signals for one picture (``gray`` is the hashes' 64x64 square)."""
    return Signals(
        sharpness=sharpness(rgb),
        low_information=float(gray.std()) < LOW_INFORMATION_STD,
        colour=colour_signature(rgb),
        thumb=thumbnail(gray),
    )
