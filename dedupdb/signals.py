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


# ----------------------------------------------------------------------------- conversions

# A lossless file made from a JPEG holds that JPEG's decode: the 8x8 DCT coefficients of its
# luma lie on the JPEG's quantization lattice (multiples of each coefficient's step), give or
# take the rounding of the decoder's output (+-0.35 levels; other IDCTs +-1). A picture that
# never was a JPEG has coefficients spread evenly between the lattice points. The index keeps
# the coefficients of the most textured blocks of each lossless picture (DCT_BLOCKS of them,
# at each grid position a JPEG's blocks can have after a rotation) and each JPEG's luma
# quantization table; the report tests one against the other (``conversion_fit``).
DCT_BLOCKS = 32
_DCT_SPREAD = 32  # strips, and blocks per strip, among which the most textured are kept
_DCT_SCALE = 8  # coefficients stored as int16 eighths
_DCT_N = np.arange(8)
_DCT = np.cos((2 * _DCT_N[None, :] + 1) * _DCT_N[:, None] * np.pi / 16) * 0.5
_DCT[0] /= np.sqrt(2)
# The fit needs this many informative coefficients (a quantization step of 2 or more, and a
# value away from 0); a JPEG saved at the highest qualities (steps of 1) leaves too few.
FIT_MIN_COEFFICIENTS = 100


def dct_sample(image: Image.Image) -> bytes:
    """The luma DCT coefficients (JPEG's level shift and normalisation, in eighths, int16
    big-endian) of the DCT_BLOCKS most textured 8x8 blocks among up to 32 x 32 evenly spread
    ones, for each grid offset (0 or the side modulo 8, in x and in y: where a JPEG's grid
    lies after a rotation or mirror), offsets one after another.

    ``image`` is the stored (not yet rotated) full-resolution picture, 8-bit "L" or "RGB";
    only 32 strips of 8 rows are read from it. Empty for a picture under 32x32 pixels.
    """
    width, height = image.size
    parts = []
    for oy in sorted({0, height % 8}):
        for ox in sorted({0, width % 8}):
            rows, cols = (height - oy) // 8, (width - ox) // 8
            if rows < 4 or cols < 4:
                return b""
            blocks = np.concatenate([_strip_blocks(image, ox, oy + 8 * int(r), cols)
                                     for r in _spread(rows)])  # fmt: skip
            if blocks.ndim == 4:  # ITU-R 601 luma, as JPEG's Y
                blocks = blocks[..., 0] * 0.299 + blocks[..., 1] * 0.587 + blocks[..., 2] * 0.114
            spread = blocks.reshape(len(blocks), 64).var(axis=1)
            top = np.argsort(-spread, kind="stable")[:DCT_BLOCKS]
            padded = np.zeros((DCT_BLOCKS, 8, 8))
            padded[: len(top)] = _DCT @ (blocks[top] - 128.0) @ _DCT.T
            parts.append(np.clip(np.rint(padded * _DCT_SCALE), -32767, 32767).astype(">i2"))
    return b"".join(p.tobytes() for p in parts)


def _spread(count: int) -> np.ndarray:
    """Up to _DCT_SPREAD evenly spread indices below count."""
    return np.unique(np.linspace(0, count - 1, min(count, _DCT_SPREAD)).astype(np.int64))


def _strip_blocks(image: Image.Image, ox: int, y: int, cols: int) -> np.ndarray:
    """Evenly spread 8x8 blocks of the 8-row strip at y (float64, (n, 8, 8[, 3]))."""
    strip = np.asarray(image.crop((ox, y, ox + 8 * cols, y + 8)), dtype=np.float64)
    blocks = strip.reshape(8, cols, 8, *strip.shape[2:]).swapaxes(0, 1)
    result: np.ndarray = blocks[_spread(cols)]
    return result


def conversion_fit(sample: bytes, quantization: bytes) -> float | None:
    """How well a lossless picture's DCT sample (``dct_sample``) lies on a JPEG's luma
    quantization lattice (``quantization``: 64 steps, row by row): 0 for a picture that never
    was that JPEG (coefficients spread evenly), about 1 for its decode; None when too few
    coefficients tell (a JPEG saved at the highest quality, a flat picture).

    Each coefficient counts as on the lattice within a window of min(1, step/4); the share
    on it is compared with the share an even spread would give, over the best of the grid
    offsets and of the table and its transpose (a rotated copy's grid is transposed).
    """
    if not sample or len(quantization) != 64:
        return None
    steps = np.frombuffer(quantization, dtype=np.uint8).astype(np.float64).reshape(8, 8)
    coefficients = np.frombuffer(sample, dtype=">i2").astype(np.float64) / _DCT_SCALE
    best: float | None = None
    for part in coefficients.reshape(-1, DCT_BLOCKS, 8, 8):
        for table in (steps, steps.T):
            step = np.broadcast_to(np.maximum(table, 1.0), part.shape)
            informative = (step >= 2) & (np.abs(part) >= step / 2)
            informative[:, 0, 0] = False  # the DC term: too coarse a test
            count = int(informative.sum())
            if count < FIT_MIN_COEFFICIENTS:
                continue
            c, s = part[informative], step[informative]
            window = np.minimum(1.0, s / 4)
            on = float((np.abs(c - s * np.rint(c / s)) <= window).sum())
            expected = float((2 * window / s).sum())
            fit = (on - expected) / (count - expected)
            best = fit if best is None else max(best, fit)
    return best


def quantization_table(tables: object) -> bytes | None:
    """A JPEG's luma quantization table (Pillow's ``quantization[0]``, row by row) as 64
    bytes, or None (no table, or 16-bit steps)."""
    if not isinstance(tables, dict) or 0 not in tables:
        return None
    steps = list(tables[0])
    if len(steps) != 64 or not all(0 < int(s) < 256 for s in steps):
        return None
    return bytes(int(s) for s in steps)


# The IJG (libjpeg) luminance table at quality 50 (ITU-T T.81 Annex K), row by row: the
# tables of qualities 1-100 are it scaled (jpeg_set_quality), as most encoders write them.
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.int64,
)  # fmt: skip
_IJG_QUALITIES = np.arange(1, 101)
_IJG_SCALES = np.where(_IJG_QUALITIES < 50, 5000 // _IJG_QUALITIES, 200 - 2 * _IJG_QUALITIES)
_IJG_TABLES = np.clip((_IJG_LUMA[None, :] * _IJG_SCALES[:, None] + 50) // 100, 1, 255)


def jpeg_quality(quantization: bytes) -> int:
    """The IJG quality (1-100) whose luma table is nearest a JPEG's (``quantization_table``):
    how much the last save discarded. A camera's own tables give their nearest equivalent."""
    steps = np.frombuffer(quantization, dtype=np.uint8).astype(np.int64)
    distance = np.abs(_IJG_TABLES - steps[None, :]).sum(axis=1)
    return int(_IJG_QUALITIES[int(np.argmin(distance))])
