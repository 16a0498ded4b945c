"""A finer hash for pictures whose layouts look alike: pages of one document template, product
shots of one outline on white (issue 16).

pHash keeps the 8x8 lowest frequencies of a 64x64 square: two pages of one letter or receipt
template (the same letterhead, rules and text blocks, other words) or two bottles of one shape
with other labels agree there as closely as a re-saved copy does. What tells them apart lies a
little higher: the lengths of the lines, a label's motif. The fine hash is the 24x24 lowest
DCT coefficients of the *whole frame* (not the picture inside added borders, whose box moves
with a product's soft shadow) squeezed to 128x128 (``SQUARE``), DC left out, stored as int8.

Two pictures are compared aligned by their pair's transform: a dihedral turn of the picture is
a transposition and sign changes of its DCT coefficients (``aligned``), so one stored block
serves all 8 orientations. Each picture's coefficients are split at their median, as pHash's
are, but only coefficients clearly away from the median in both pictures (more than
``DEAD_ZONE`` median absolute deviations) are compared: the ones near it flip with any
re-encoding and made copies of a page differ as much as two pages do.
``disagreement`` is the share of those compared that fall on different sides.

The blob also carries two cheap signals of the whole frame that say where look-alikes live:
``text_likeness`` (features.py: a light page with thin dark strokes) and ``flat_background``
(the share of the frame at the level of a uniform border: a product on white).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .features import text_likeness

VERSION = 1
SQUARE = 128
SIDE = 24  # coefficients kept per axis
DEAD_ZONE = 0.3  # in median absolute deviations from the median
_HEADER = 4  # version, text likeness, flat background, reserved
SIZE = _HEADER + SIDE * SIDE
# A border ring this uniform (share of its pixels within FLAT_LEVELS of its median) is a
# background, and the pixels at its level are the flat background.
FLAT_RING = 0.9
FLAT_LEVELS = 8


@dataclass(frozen=True)
class FineHash:
    """A stored fine hash, unpacked."""

    coefficients: np.ndarray  # (SIDE, SIDE) float64, DC 0
    text: float  # 0..1, ``features.text_likeness`` of the whole frame
    flat: float  # 0..1, ``flat_background`` of the whole frame


@functools.cache
def _dct_rows() -> np.ndarray:
    """The lowest ``SIDE`` rows of the unnormalised DCT-II over ``SQUARE`` samples (as
    ``hashes.scipy_dct`` computes), so the kept coefficients are two small matrix products."""
    k = np.arange(SIDE)[:, None]
    n = np.arange(SQUARE)[None, :]
    rows: np.ndarray = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * SQUARE))
    return rows


def square(luma: np.ndarray) -> np.ndarray:
    """The whole frame's luminance (h, w) squeezed to SQUARE x SQUARE, float64."""
    image = Image.fromarray(luma)
    resized = image.resize((SQUARE, SQUARE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.float64)


def coefficients(pixels: np.ndarray) -> np.ndarray:
    """The (SIDE, SIDE) lowest DCT coefficients of a SQUARE x SQUARE picture, DC set to 0."""
    rows = _dct_rows()
    out: np.ndarray = rows @ pixels @ rows.T
    out[0, 0] = 0.0
    return out


def flat_background(luma: np.ndarray) -> float:
    """The share of the picture at the level of its border, when the border is uniform (0
    otherwise): a product photographed on white, a page with margins."""
    gray = luma.astype(np.int16)
    if min(gray.shape) < 4:
        return 0.0
    ring = np.concatenate([gray[:2].ravel(), gray[-2:].ravel(), gray[:, :2].ravel(),
                           gray[:, -2:].ravel()])  # fmt: skip
    level = float(np.median(ring))
    if float(np.mean(np.abs(ring - level) <= FLAT_LEVELS)) < FLAT_RING:
        return 0.0
    return float(np.mean(np.abs(gray - level) <= FLAT_LEVELS))


def compute(luma: np.ndarray) -> bytes:
    """The stored fine hash of a picture from its whole frame's luminance at the working size
    (``DecodedImage.working_luma``)."""
    block = coefficients(square(luma))
    scale = 127.0 / max(float(np.abs(block).max()), 1e-9)
    quantised = np.round(block * scale).astype(np.int8)
    header = bytes(
        [VERSION, round(text_likeness(luma) * 255), round(flat_background(luma) * 255), 0]
    )
    return header + quantised.tobytes()


def unpack(blob: bytes | None) -> FineHash | None:
    """A stored fine hash, or None for a missing one or one of another version."""
    if blob is None or len(blob) != SIZE or blob[0] != VERSION:
        return None
    block = np.frombuffer(blob, dtype=np.int8, offset=_HEADER).reshape(SIDE, SIDE)
    return FineHash(block.astype(np.float64), blob[1] / 255, blob[2] / 255)


@functools.cache
def _signs() -> np.ndarray:
    """(-1)^k for the coefficient indices: a mirror of the picture along an axis."""
    signs: np.ndarray = (-1.0) ** np.arange(SIDE)
    return signs


def aligned(block: np.ndarray, variant: int) -> np.ndarray:
    """The coefficients of ``hashes.DIHEDRAL[variant]`` of the picture whose coefficients are
    ``block`` (rows: vertical frequency, columns: horizontal)."""
    s = _signs()
    rows, columns = s[:, None], s[None, :]
    # Per variant: transposed first?, then the row and column sign flips.
    transpose, flip_rows, flip_columns = _ALIGNMENTS[variant]
    out: np.ndarray = block.T if transpose else block
    if flip_rows:
        out = out * rows
    if flip_columns:
        out = out * columns
    return out


# hashes.DIHEDRAL order: identity, rot90 (the transpose upside down), rot180, rot270 (the
# upside-down picture transposed), mirror, flip, transpose, transverse.
_ALIGNMENTS = (
    (False, False, False),
    (True, True, False),
    (False, True, True),
    (True, False, True),
    (False, False, True),
    (False, True, False),
    (True, False, False),
    (True, True, True),
)


@functools.cache
def _window_maps(
    window: tuple[float, float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """(SIDE, SIDE) maps from a picture's coefficients to those of one of its windows (left,
    top, right, bottom fractions), for the rows and the columns: the low-passed picture the
    coefficients describe, box-resampled to the window (``hashes.area_weights``), transformed
    again. Frequencies the window would hold beyond SIDE / its share are lost on the way, so
    only a band of the result is compared (``window_band``)."""
    from .hashes import area_weights

    rows = _dct_rows()
    k = np.arange(SIDE)[None, :]
    n = np.arange(SQUARE)[:, None]
    inverse = np.where(k == 0, 1.0, 2.0) * np.cos(np.pi * k * (2 * n + 1) / (2 * SQUARE))
    inverse /= 2 * SQUARE  # (SQUARE, SIDE): the inverse of the unnormalised DCT-II
    left, top, right, bottom = window
    vertical = rows @ area_weights(SQUARE * top, SQUARE * bottom, SQUARE, SQUARE) @ inverse
    horizontal = rows @ area_weights(SQUARE * left, SQUARE * right, SQUARE, SQUARE) @ inverse
    return vertical, horizontal


def window(block: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The coefficients of a window of the picture (as far as ``block`` holds them), DC 0."""
    vertical, horizontal = _window_maps(box)
    out: np.ndarray = vertical @ block @ horizontal.T
    out[0, 0] = 0.0
    return out


def window_band(box: tuple[float, float, float, float]) -> int:
    """How many of a window's lowest frequencies per axis ``window`` recovers."""
    left, top, right, bottom = box
    return max(2, int(SIDE * min(right - left, bottom - top)))


def disagreement(first: np.ndarray, second: np.ndarray, band: int = SIDE) -> float:
    """The share of the coefficients clearly away from their median in both blocks (aligned)
    that lie on different sides of it: about 0 for copies, more for look-alikes. ``band``:
    only the lowest ``band`` x ``band`` frequencies are compared."""
    a, b = first[:band, :band].ravel()[1:], second[:band, :band].ravel()[1:]  # without DC
    da, db = a - np.median(a), b - np.median(b)
    confident = (np.abs(da) > DEAD_ZONE * np.median(np.abs(da))) & (
        np.abs(db) > DEAD_ZONE * np.median(np.abs(db))
    )
    compared = int(confident.sum())
    if not compared:
        return 0.0
    return float(((da > 0) != (db > 0))[confident].sum() / compared)
