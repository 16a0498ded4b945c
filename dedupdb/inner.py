"""A picture shown inside another: the photo at the middle of a phone screenshot, a photo pasted
into a web page, a slide or a document.

Perceptual hashes describe a whole frame. A screenshot that shows a picture at half the
screen's width is, to them, mostly its chrome (status bar, app bar, captions, navigation bar):
it matches neither the picture nor, wrongly, anything but other screenshots of the same app.
``find`` looks for the picture inside such surroundings at index time, on the reduced picture
the decoder already made, and ``measure`` hashes it; matching then looks each inner picture up
among every picture's full-frame hash (``match.inner_pairs``), and refuses a full-frame pair
of two pictures whose inner pictures differ (``match.inner_veto``).

How the rectangle is found: in each row of a picture shown inside a layout, the surroundings
reach it from both sides as flat runs (the page's margins), so every row of the picture has
the same leading and trailing runs of the margins' level, ending at its left and right edges.
Chrome rows above and below it (a bar, a line of text, a blank gap) do not: their runs end
elsewhere or span the whole row. ``find`` takes, among the rows whose runs leave a wide span,
the commonest pair of run ends, then the longest band of consecutive rows that keep those
ends, and accepts it as a picture when it is photographic (many tones, not mostly the
margins' level) and neither too small nor nearly the whole frame. An ordinary photo rarely
has two flat runs that end at the same two columns over a tall band of rows: a frame or a
letterbox is trimmed before (``decode.content_box``), and a subject before a plain
background (a product shot) has a curved outline.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .hashes import VARIANTS, gray_square, phash_variants
from .hashparams import HashParams
from .signals import SIGNATURE_GRID, colour_signature

# A margin's run: pixels within this many luma levels of the row's outermost pixel (flat UI,
# allowing for JPEG noise and dithering).
RUN_TOLERANCE = 4
# Two rows keep the same edges when their runs end within this many pixels of each other
# (an anti-aliased or JPEG-blurred edge moves by a pixel or two).
EDGE_SLACK = 1
# The rows inside the band that may break its edges (the picture's own pixels next to its edge
# that happen to have the margins' level), as a share of the band's rows.
MAX_BROKEN = 0.25
# Of the band's rows, the share whose runs end exactly at the commonest column, on the worse
# edge and on average.
MIN_EXACT = 0.5
MEAN_EXACT = 0.7
# The inner picture's size, as shares of the frame's width and height: a picture at a third
# of a phone screen's width and a tenth of its height is still worth a hash; one that fills
# nearly the whole frame is the frame.
MIN_WIDTH = 0.25
MIN_HEIGHT = 0.08
MIN_PIXELS = 24  # on each side, in the reduced picture
MAX_AREA = 0.85
# The margins on the left and the right, each at least this share of the width, flat (luma
# standard deviation at most MARGIN_STD over the band) and of one level on both sides.
MIN_MARGIN = 0.03
MARGIN_STD = 4.0
# A shown picture is no strip: its shorter side is at least this share of its longer.
MIN_ASPECT = 0.25
# Photographic content: the band's luma spread (standard deviation) and how many tones it
# uses (levels holding at least TONE_SHARE of its pixels), and at most MAX_MARGIN_LEVEL of its
# pixels at the margins' level (a line of text inside the margins is mostly page).
MIN_STD = 8.0
MIN_TONES = 32
TONE_SHARE = 0.0005
MAX_MARGIN_LEVEL = 0.5

_FORMAT = 1
_HEADER = struct.Struct(">BB4H")
_SIGNATURE_BYTES = SIGNATURE_GRID * SIGNATURE_GRID * 3


@dataclass(frozen=True)
class InnerPicture:
    """A picture found inside another: its ``box`` (left, top, right, bottom) as fractions of
    the outer picture's width and height, its pHash's 8 dihedral variants (``hashes.DIHEDRAL``
    order, as the full-frame hashes are stored) and its 4x4 RGB colour signature."""

    box: tuple[float, float, float, float]
    phash: tuple[int, ...]
    colour: bytes


def find(luma: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom, in pixels) of the picture shown inside ``luma``
    (uint8 (h, w)), or None when there is none (see the module)."""
    height, width = luma.shape
    if width < 4 * MIN_PIXELS or height < 4 * MIN_PIXELS:
        return None
    margin = max(2, MIN_MARGIN * width)
    needed = max(MIN_PIXELS, MIN_HEIGHT * height)
    # Only rows whose both ends are flat over a margin can hold the picture, or lie inside
    # its band: most photos have too few of them, and are done with after two thin strips.
    strip = max(1, int(margin) - EDGE_SLACK)
    flat = _flat(luma[:, :strip]) & _flat(luma[:, -strip:][:, ::-1])
    if flat.sum() < needed:
        return None
    start = np.zeros(height, dtype=np.int64)  # rows without flat ends: inside no band
    end = np.full(height, width, dtype=np.int64)
    start[flat], end[flat] = _runs(luma[flat].astype(np.int16))
    span = end - start
    wide = (span >= MIN_WIDTH * width) & (start >= margin) & (width - end >= margin)
    if wide.sum() < needed:
        return None
    best: tuple[int, int, int, int] | None = None
    for left, right in _common_edges(start[wide], end[wide]):
        box = _band(start, end, left, right, needed)
        if box is None:
            continue
        top, bottom = box
        found = (left, top, right, bottom)
        if _plausible(luma, found) and (best is None or _area(found) > _area(best)):
            best = found
    return best


def _flat(strip: np.ndarray) -> np.ndarray:
    """Per row of ``strip`` (uint8), whether all of it is within the tolerance of its first
    pixel."""
    pixels = strip.astype(np.int16)
    return np.asarray((np.abs(pixels - pixels[:, :1]) <= RUN_TOLERANCE).all(axis=1))


def _runs(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``pixels`` (int16 luma), where the leading flat run ends and the trailing
    one starts."""
    width = pixels.shape[1]
    off_left = np.abs(pixels - pixels[:, :1]) > RUN_TOLERANCE
    off_right = np.abs(pixels - pixels[:, -1:]) > RUN_TOLERANCE
    any_left = off_left.any(axis=1)
    start = np.where(any_left, off_left.argmax(axis=1), width)
    end = np.where(off_right.any(axis=1), width - off_right[:, ::-1].argmax(axis=1), 0)
    return start.astype(np.int64), end.astype(np.int64)


def _common_edges(start: np.ndarray, end: np.ndarray, count: int = 3) -> list[tuple[int, int]]:
    """The ``count`` commonest (start, end) pairs, each counting the rows within the slack."""
    pairs = np.unique(np.stack([start, end], axis=1), axis=0)
    if len(pairs) > 256:  # a textured photo: hundreds of different run ends
        return []
    near = (np.abs(start[None, :] - pairs[:, :1]) <= EDGE_SLACK) & (
        np.abs(end[None, :] - pairs[:, 1:]) <= EDGE_SLACK
    )
    support = near.sum(axis=1)
    order = np.argsort(-support, kind="stable")
    return [(int(pairs[i, 0]), int(pairs[i, 1])) for i in order[:count]]


def _band(
    start: np.ndarray, end: np.ndarray, left: int, right: int, needed: float
) -> tuple[int, int] | None:
    """The longest band of consecutive rows (top, bottom), ``needed`` rows at least, whose
    runs end at ``left`` and ``right``, allowing rows inside it whose runs stop short of the
    edges (the picture's own pixels at the margins' level) but none whose content leaves the
    edges or that is blank."""
    fits = (np.abs(start - left) <= EDGE_SLACK) & (np.abs(end - right) <= EDGE_SLACK)
    inside = (start >= left - EDGE_SLACK) & (end <= right + EDGE_SLACK) & (end - start > 0)
    steps = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
    best: tuple[int, int] | None = None
    for top, bottom in zip(np.flatnonzero(steps == 1), np.flatnonzero(steps == -1), strict=True):
        if bottom - top < needed:
            continue
        band = _trimmed(fits, start, end, int(top), int(bottom))
        if band is not None and (best is None or band[1] - band[0] > best[1] - best[0]):
            best = band
    return best


def _trimmed(
    fits: np.ndarray, start: np.ndarray, end: np.ndarray, top: int, bottom: int
) -> tuple[int, int] | None:
    """The rows top..bottom without the non-fitting rows at either end, if most rows fit and
    their edges are upright: a slanted edge (a photo of a screen, a tilted copy) drifts
    through the slack, a shown picture's does not."""
    rows = top + np.flatnonzero(fits[top:bottom])
    if not len(rows):
        return None
    first, last = int(rows[0]), int(rows[-1]) + 1
    if len(rows) < (1 - MAX_BROKEN) * (last - first):
        return None
    quarter = max(1, len(rows) // 4)
    exact = []
    for edge in (start[first:last], end[first:last]):
        kept = edge[rows - first]
        if abs(float(np.median(kept[:quarter])) - float(np.median(kept[-quarter:]))) > 1:
            return None
        exact.append(float((edge == np.bincount(edge).argmax()).mean()))
    # A curved outline (a round product's middle) keeps within the slack but seldom at one
    # column; a shown picture's edge is one column, but for JPEG noise.
    if min(exact) < MIN_EXACT or sum(exact) / 2 < MEAN_EXACT:
        return None
    return first, last


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _plausible(luma: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the box is of a size a shown picture has, and photographic."""
    height, width = luma.shape
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    if w < MIN_PIXELS or h < MIN_PIXELS or h < MIN_HEIGHT * height or w < MIN_WIDTH * width:
        return False
    if w * h > MAX_AREA * width * height or min(w, h) < MIN_ASPECT * max(w, h):
        return False
    band = luma[top:bottom].astype(np.int16)
    left_margin, right_margin = band[:, : max(1, left - EDGE_SLACK)], band[:, right + EDGE_SLACK :]
    if not right_margin.size:
        return False
    if max(float(left_margin.std()), float(right_margin.std())) > MARGIN_STD:
        return False
    if abs(float(left_margin.mean()) - float(right_margin.mean())) > RUN_TOLERANCE:
        return False
    part = luma[top:bottom, left:right]
    if float(part.std()) < MIN_STD:
        return False
    counts = np.bincount(part.ravel(), minlength=256)
    if int((counts >= TONE_SHARE * part.size).sum()) < MIN_TONES:
        return False
    level = round(float(left_margin.mean()))
    at_level = np.abs(part.astype(np.int16) - level) <= RUN_TOLERANCE
    return float(at_level.mean()) <= MAX_MARGIN_LEVEL


def measure(picture: Image.Image, luma: np.ndarray, params: HashParams) -> InnerPicture | None:
    """The inner picture of a decoded picture (``picture`` and its ``luma``, one size), hashed
    as the full frames are (``hashes.gray_square`` then pHash), or None."""
    box = find(luma)
    if box is None:
        return None
    left, top, right, bottom = box
    height, width = luma.shape
    # One pixel in from each edge: the edge's pixels blend the picture with the page.
    inset = luma[top + 1 : bottom - 1, left + 1 : right - 1]
    gray = gray_square(np.ascontiguousarray(inset))
    return InnerPicture(
        box=(left / width, top / height, right / width, bottom / height),
        phash=tuple(phash_variants(gray, params.hash_size)),
        colour=colour_signature(picture.crop(box)),
    )


def pack(inner: InnerPicture, params: HashParams) -> bytes:
    """The stored form (``images.inner_picture``): a format byte, the hash size, the box in
    65,535ths, the 8 pHash variants (big-endian) and the colour signature."""
    box = (round(min(max(v, 0.0), 1.0) * 65535) for v in inner.box)
    hashes = b"".join(v.to_bytes(params.nbytes, "big") for v in inner.phash)
    return _HEADER.pack(_FORMAT, params.hash_size, *box) + hashes + inner.colour


def unpack(blob: bytes) -> tuple[InnerPicture, HashParams] | None:
    """``pack``'s inverse, with the hash parameters it was made with; None for a blob of
    another format or size."""
    if len(blob) < _HEADER.size:
        return None
    version, hash_size, *box = _HEADER.unpack_from(blob)
    if version != _FORMAT or hash_size not in (8, 16):
        return None
    params = HashParams(hash_size)
    n = params.nbytes
    if len(blob) != _HEADER.size + VARIANTS * n + _SIGNATURE_BYTES:
        return None
    at = _HEADER.size
    hashes = tuple(int.from_bytes(blob[at + i * n : at + (i + 1) * n], "big") for i in range(8))
    colour = blob[at + VARIANTS * n :]
    left, top, right, bottom = (v / 65535 for v in box)
    return InnerPicture((left, top, right, bottom), hashes, colour), params
