"""Local features of one picture, for the second matching stage (``localmatch``).

Perceptual hashes describe a whole frame, so they miss a copy that shows only part of a picture
(a heavy or off-centre crop), shows it turned (a tilt), or shows it as a part of a larger one (a
phone screenshot). Local features survive all three: ORB keypoints (Rublee et al., "ORB: an
efficient alternative to SIFT or SURF", ICCV 2011) each carry a 256-bit binary descriptor of the
patch around them, invariant to rotation and, across the detector's scale pyramid, to scale.

``extract(luma)`` takes the reduced-scale luma the decoder already made and returns at most
``MAX_FEATURES`` keypoints, chosen evenly across the pyramid's levels (see ``_balanced``), with a
small grey thumbnail for verifying a matched region's content and a text-likeness score: all
stored per image (models.LocalFeatures) by ``dedupdb index --features``.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from .errors import DedupdbError
from .fingerprint.records import PackedFeatures

# Parameters of the stored features; a change invalidates stored rows, so ``PARAMS`` is stored
# with them and rows of other parameters are not compared.
VERSION = 1
# The picture is scaled so that its shorter side is SHORT_SIDE pixels (512 x 384 for a 4:3
# photo), its longer side at most LONG_SIDE: a phone screenshot (9:19.5) is then 384 px wide,
# so the picture shown at half its width is ~2.5x smaller than its original's feature image,
# well within the pyramid's range, instead of 4x when scaled to a photo's area.
SHORT_SIDE = 384
LONG_SIDE = 1024
MAX_UPSCALE = 2.0
MAX_FEATURES = 256  # stored per image: 256 x (32 + 4) bytes = 9 KiB
DETECTED = 1500  # detected before the balanced choice of MAX_FEATURES
PYRAMID_LEVELS = 8
PYRAMID_SCALE = 1.25  # 1.25^7 = 4.8: a picture shown 4.8x smaller still meets its own keypoints
FAST_THRESHOLD = 12
# The grey thumbnail kept for checking a matched region: its longest side, aspect kept.
THUMB_SIDE = 64
PARAMS = f"orb-v{VERSION}-{MAX_FEATURES}-{PYRAMID_LEVELS}-{PYRAMID_SCALE}-{SHORT_SIDE}"


@dataclass(frozen=True)
class LocalFeatures:
    """One picture's keypoints in the feature image's pixels (``width`` x ``height``, the
    picture scaled to ``SHORT_SIDE``), their descriptors, a grey thumbnail and how much the
    picture looks like printed text."""

    width: int
    height: int
    points: np.ndarray  # (n, 2) float32 x, y
    descriptors: np.ndarray  # (n, 32) uint8
    thumb: np.ndarray  # (th, tw) uint8, longest side THUMB_SIDE
    textlike: float  # 0..1, see ``text_likeness``


def require_opencv() -> None:
    """Raise ``DedupdbError`` naming the extra when OpenCV is not installed: said once, before
    a run starts, instead of failing every file in the workers."""
    if importlib.util.find_spec("cv2") is None:
        raise DedupdbError(
            "local features (`index --features`, `report --deep`) need OpenCV",
            "pip install 'dedupdb[deep]'",
        )


@functools.cache
def opencv() -> Any:
    """OpenCV (``cv2``), loaded on first use (only `--features` and `--deep` need it), with
    its own threads off in this process.

    Each index worker is a process of its own, one per core already. And a process whose
    OpenCV started its thread pool (a `report --deep` run from Python, or `serve`) must not
    fork index workers with it: the pool's threads do not survive the fork, and the worker's
    first OpenCV call then waits for them forever. With one thread set before any other
    call, no pool is started.
    """
    import cv2

    cv2.setNumThreads(1)
    return cv2


def extract(luma: np.ndarray) -> LocalFeatures:
    """The local features of a picture given as its uint8 luma (h, w)."""
    cv2 = opencv()
    image = _working(luma)
    orb = cv2.ORB.create(
        nfeatures=DETECTED,
        scaleFactor=PYRAMID_SCALE,
        nlevels=PYRAMID_LEVELS,
        edgeThreshold=15,
        patchSize=31,
        fastThreshold=FAST_THRESHOLD,
    )
    keypoints, descriptors = orb.detectAndCompute(image, None)
    height, width = image.shape
    if descriptors is None or not keypoints:
        points = np.zeros((0, 2), np.float32)
        descriptors = np.zeros((0, 32), np.uint8)
    else:
        chosen = _balanced(
            np.array([k.octave for k in keypoints]), np.array([k.response for k in keypoints])
        )
        points = np.array([keypoints[i].pt for i in chosen], dtype=np.float32).reshape(-1, 2)
        descriptors = np.ascontiguousarray(descriptors[chosen])
    return LocalFeatures(
        width=width,
        height=height,
        points=points,
        descriptors=descriptors,
        thumb=_thumb(luma),
        textlike=text_likeness(luma),
    )


def _working(luma: np.ndarray) -> np.ndarray:
    height, width = luma.shape
    scale = min(MAX_UPSCALE, SHORT_SIDE / max(1, min(width, height)))
    scale = min(scale, LONG_SIDE / max(width, height))
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    if size == (width, height):
        return np.ascontiguousarray(luma)
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(luma).resize(size, method))


def _balanced(octaves: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Indices of at most MAX_FEATURES keypoints, the strongest of each pyramid level in turn.

    ORB shares its features among levels by area, so the coarse levels (where a picture meets
    its own copy shown several times smaller, as in a screenshot) get a few percent of them;
    here every level gets an equal share, and what a level cannot use goes to the others.
    """
    order = np.lexsort((-responses, octaves))  # by level, strongest first
    levels = octaves[order]
    rank = np.arange(len(order)) - np.searchsorted(levels, levels)  # rank within its level
    # Round-robin over the levels: rank 0 of every level, then rank 1, ...
    picked = order[np.lexsort((levels, rank))][:MAX_FEATURES]
    return np.sort(picked)


def _thumb(luma: np.ndarray) -> np.ndarray:
    image = Image.fromarray(luma)
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    return np.asarray(image)


def text_likeness(luma: np.ndarray) -> float:
    """How much a picture looks like printed text: the share of its dark ink that is thin
    strokes, times whether it has a light page around the ink (0 for a photo).

    A page of text is mostly light paper with dark strokes one to three pixels wide at this
    scale; an eroded copy of its ink mask loses nearly all of it. A product on white has a
    light background too, but its dark areas are solid and survive the erosion.
    """
    gray = luma.astype(np.int16)
    light = float(np.mean(gray > 190))
    ink = gray < 150  # antialiased small print at this scale is grey, not black
    ink_share = float(np.mean(ink))
    if light < 0.5 or not 0.005 <= ink_share <= 0.35:
        return 0.0
    # 3x3 erosion of the ink mask by shifted ANDs (no SciPy import in the worker's hot path).
    core = ink[1:-1, 1:-1].copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            core &= ink[dy : dy + ink.shape[0] - 2, dx : dx + ink.shape[1] - 2]
    thin = 1.0 - float(core.sum()) / max(1.0, float(ink.sum()))
    return round(thin * min(1.0, light / 0.7), 3)


# ---------------------------------------------------------------- storage


def pack(features: LocalFeatures) -> PackedFeatures:
    """The features as stored (models.LocalFeatures' columns, without the content hash)."""
    return PackedFeatures(
        params=PARAMS,
        width=features.width,
        height=features.height,
        count=len(features.points),
        # Quarter pixels in 16 bits: keypoints are located to about a pixel anyway.
        points=np.round(features.points * 4).astype("<u2").tobytes(),
        descriptors=features.descriptors.tobytes(),
        thumb_width=features.thumb.shape[1],
        thumb=features.thumb.tobytes(),
        textlike=features.textlike,
    )


def unpack(row: PackedFeatures | Mapping[str, Any]) -> LocalFeatures:
    """``pack``'s record (or a stored row of the same columns) back into features."""
    if isinstance(row, PackedFeatures):
        row = asdict(row)
    count = int(row["count"])
    thumb_width = int(row["thumb_width"])
    thumb = np.frombuffer(row["thumb"], np.uint8)
    return LocalFeatures(
        width=int(row["width"]),
        height=int(row["height"]),
        points=np.frombuffer(row["points"], "<u2").reshape(count, 2).astype(np.float32) / 4,
        descriptors=np.frombuffer(row["descriptors"], np.uint8).reshape(count, 32),
        thumb=thumb.reshape(-1, thumb_width),
        textlike=float(row["textlike"]),
    )
