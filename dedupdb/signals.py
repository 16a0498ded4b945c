"""Measurements of a decoded picture, stored at index time so the report never decodes again.

Sharpness and low information feed the keeper ranking and the false-positive guards; the colour
signature lets the report tell a light from a dark version of one picture (grayscale hashes
cannot); the thumbnail lets the report check candidate pairs with SSIM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

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


def sharpness(picture: np.ndarray) -> float:
    """Variance of the Laplacian of the luminance (on a 0..1 scale) x 10^4.

    ``picture`` is the luminance at the working size (``DecodedImage.working_luma``, longest
    side 256 px) or an RGB array. Measured at that reduced scale, so a downscaled copy is not
    rewarded for its resolution (that is ranked separately) but a blurred one scores lower.
    The 4-neighbour Laplacian is computed in integers over the interior pixels (fast, exact).
    """
    if picture.ndim == 3:
        picture = np.asarray(Image.fromarray(picture).convert("L"))
    if min(picture.shape) < 3:
        return 0.0
    gray = picture.astype(np.int16)
    laplacian = (
        gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * gray[1:-1, 1:-1]
    )
    return float(laplacian.var(dtype=np.float64) / (255.0 * 255.0) * 1e4)


def colour_signature(picture: np.ndarray | Image.Image) -> bytes:
    """Mean RGB over a 4x4 grid (48 bytes).

    ``picture`` is an RGB array or a Pillow image in L, RGB or YCbCr mode: a YCbCr picture is
    averaged first and converted second (the conversion is affine, so the order hardly
    matters), which avoids converting every pixel.
    """
    image = colour_source(Image.fromarray(picture) if isinstance(picture, np.ndarray) else picture)
    grid = image.resize((SIGNATURE_GRID, SIGNATURE_GRID), Image.Resampling.BOX)
    return np.asarray(grid.convert("RGB"), dtype=np.uint8).tobytes()


def colour_source(image: Image.Image) -> Image.Image:
    """What the colour signatures average: the picture area-averaged down to sides that are
    multiples of the grid, the shorter one 32 to 63 pixels (the same cell means, a third the
    cost). A picture already so reduced is returned as it is, so the indexer reduces once for
    ``colour_signature`` and ``crop_colours``.

    Every reduced pixel averages the same area, and every grid cell the same whole number of
    reduced pixels, so the cells are exact means of the picture. (``Image.reduce`` by a whole
    factor would leave a partial block at the right and bottom edges weighing as much as a
    full one, and cells that straddle reduced pixels: the same picture at two sizes, say a
    JPEG and its TIFF conversion, then differed by up to 15 levels in a cell.)
    """
    factor = min(image.size) // (SIGNATURE_GRID * 8)
    if factor <= 1:
        return image
    block = factor * SIGNATURE_GRID
    width, height = image.width // block * SIGNATURE_GRID, image.height // block * SIGNATURE_GRID
    return image.resize((width, height), Image.Resampling.BOX)


def thumbnail(gray: np.ndarray) -> bytes:
    """32x32 grayscale square (1024 bytes)."""
    image = Image.fromarray(gray).resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8).tobytes()


def measure(
    picture: np.ndarray | Image.Image, gray: np.ndarray, luma: np.ndarray | None = None
) -> Signals:
    """All signals for one picture.

    ``picture`` gives the colours (see ``colour_signature``), ``gray`` is the hashes' 64x64
    square, ``luma`` the luminance at the working size when the caller has it (else
    ``picture``, an RGB array at the working size, is used).
    """
    if luma is None:
        if not isinstance(picture, np.ndarray):
            raise TypeError("measure() needs luma when picture is not an RGB array")
        luma = picture
    return Signals(
        sharpness=sharpness(luma),
        low_information=float(gray.std()) < LOW_INFORMATION_STD,
        colour=colour_signature(picture),
        thumb=thumbnail(gray),
    )


def crop_colours(
    picture: Image.Image, windows: Sequence[tuple[float, float, float, float]]
) -> bytes:
    """The colour signature (as ``colour_signature``) of each window of the picture
    (``hashes.CROP_WINDOWS``: left, top, right, bottom as fractions), concatenated: what the
    colour guard compares a cropped copy's own signature with.

    As for ``colour_signature``, the picture is box-reduced by a whole factor
    (``colour_source``; the indexer passes the picture it already reduced for that); each
    window's cells are then exact area averages of that over their (fractional) areas, as two
    small matrix products per window (``hashes.area_weights``): about 0.3 ms for the
    seventeen windows, half the cost of one Pillow ``resize(box=...)`` per window (whose
    weights differ by a few levels at the cells' edges).
    """
    from .hashes import area_weights  # hashes imports nothing from here

    pixels = np.asarray(colour_source(picture).convert("RGB"), dtype=np.float64)
    height, width = pixels.shape[:2]
    box = np.asarray(windows, dtype=np.float64)  # (k, 4): left, top, right, bottom
    rows = area_weights(height * box[:, 1], height * box[:, 3], SIGNATURE_GRID, height)
    columns = area_weights(width * box[:, 0], width * box[:, 2], SIGNATURE_GRID, width)
    planes = pixels.transpose(2, 0, 1)[None]  # (1, 3, h, w)
    cells = rows[:, None] @ planes @ columns[:, None].transpose(0, 1, 3, 2)  # (k, 3, 4, 4)
    return np.asarray(np.round(cells.transpose(0, 2, 3, 1)), dtype=np.uint8).tobytes()
