"""The keeper rules one cluster at a time, in plain Python: the readable definition that
``dedupdb.keeper.rank_clusters`` (the one implementation, numpy over every cluster at once) is
tested against (tests/test_keeper_oracle.py: equal scores, order and reasons on random clusters).

It shares the rules' constants, ``Candidate``, the conversion test, the sort key and the
reasons' words with the package (``dedupdb.keeper_rules``); the scores, the best of each
measure and the colour consensus are computed here independently, one member at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dedupdb.keeper_rules import (
    COMPRESSION_TOLERANCE,
    EXIF_TAGS_ANY,
    EXIF_TAGS_FULL,
    GOOD_JPEG_QUALITY,
    METADATA_MIN_BPP,
    METADATA_MIN_RESOLUTION,
    SHARPNESS_EXCESS,
    SHARPNESS_TOLERANCE,
    WEIGHTS,
    Candidate,
    Ranked,
    Rules,
    codec,
    conversion,
    explain,
    fidelity,
    format_rank,
    metadata_tags,
    quality_of,
    rule_value,
    same_framing,
    sort_key,
)


@dataclass
class Ranking:
    """A cluster's members best first, and why the first is the keeper."""

    ranked: list[Ranked]
    reasons: list[str] = field(default_factory=list)

    @property
    def keeper(self) -> Candidate:
        return self.ranked[0].candidate


def _ratio(value: float, best: float) -> float:
    return value / best if best > 0 else 1.0


def _capped(value: float, best: float) -> float:
    return min(1.0, _ratio(value, COMPRESSION_TOLERANCE * best))


def _exif_value(candidate: Candidate, most_tags: int) -> float:
    # Tag counts saturate: an orientation tag alone is not "rich EXIF", 20 tags are.
    count = metadata_tags(candidate)
    tags = min(max(count - EXIF_TAGS_ANY, 0), EXIF_TAGS_FULL) / EXIF_TAGS_FULL
    return (
        0.4 * (candidate.camera is not None) + 0.3 * (candidate.taken_at is not None) + 0.3 * tags
    )


@dataclass(frozen=True)
class _Best:
    """The best value of each measure in a cluster, computed once per cluster."""

    # Whose framing (aspect ratio) the others are compared with: the largest member without
    # added borders, if any (a picture measured inside bars is a few pixels off).
    framing: Candidate
    pixels: int
    bpp: dict[str, float]  # of the lossy members, per codec
    sharpness: float  # the lower median: what most copies reach
    exif_tags: int

    @classmethod
    def of(cls, cluster: Sequence[Candidate]) -> _Best:
        sharpness = sorted(c.sharpness for c in cluster)
        return cls(
            framing=max(cluster, key=lambda c: (not c.bordered, c.pixels, -c.image_id)),
            pixels=max(c.pixels for c in cluster),
            bpp=_most_bpp(cluster),
            sharpness=sharpness[(len(sharpness) - 1) // 2],
            exif_tags=max(c.exif_tags for c in cluster),
        )


def compression(candidate: Candidate, best_bpp: float) -> float:
    """1.0 for a file that kept what its picture had, less for a heavily compressed one: a
    lossless file 1.0; a JPEG its quality over GOOD_JPEG_QUALITY (at most 1: what the last
    save discarded, which a re-save at a higher quality does not bring back); another lossy
    file its bits per pixel over COMPRESSION_TOLERANCE of the best of its codec's."""
    if candidate.lossless:
        return 1.0
    quality = quality_of(candidate)
    if quality is not None:
        return min(1.0, quality / GOOD_JPEG_QUALITY)
    return _capped(candidate.bpp, best_bpp)


def _most_bpp(cluster: Sequence[Candidate]) -> dict[str, float]:
    """The most bits per pixel of the cluster's lossy members, per codec."""
    out: dict[str, float] = {}
    for c in cluster:
        if not c.lossless:
            key = codec(c)
            out[key] = max(out.get(key, c.bpp), c.bpp)
    return out


def score_parts(
    candidate: Candidate, cluster: Sequence[Candidate], best: _Best | None = None
) -> dict[str, float]:
    """Each part in 0..1, relative to the best member of the cluster for that part."""
    best = best or _Best.of(cluster)
    return {
        "resolution": _ratio(candidate.pixels, best.pixels),
        "format": format_rank(candidate),
        # A lossless file loses nothing to compression, whatever its size: size and bits per
        # pixel rank the lossy copies among themselves.
        # Among lossy files, a copy with at least COMPRESSION_TOLERANCE of the best's bytes
        # and bits per pixel scores 1: a re-encode at a higher quality adds bytes, not picture.
        "size": compression(candidate, best.bpp.get(codec(candidate), 0.0)),
        "bpp": compression(candidate, best.bpp.get(codec(candidate), 0.0)),
        # Noise and over-sharpening halos raise the measure as detail does: being sharper
        # than most copies earns nothing, being blurrier than most costs.
        "sharpness": sharpness_part(candidate.sharpness, best.sharpness, len(cluster)),
        "exif": _exif_value(candidate, best.exif_tags),
        "unedited": float(same_framing(candidate, best.framing) and not candidate.bordered)
        * fidelity(candidate),
    }


def sharpness_part(value: float, most: float, members: int) -> float:
    """The sharpness part: 1 for a copy as sharp as most copies of the picture (``most``,
    the lower median, to SHARPNESS_TOLERANCE), less for a blurrier one; and, in a cluster of
    three or more where most copies tell what the picture measures, less for one measuring
    over SHARPNESS_EXCESS times that (added noise, over-sharpening halos). Two copies alone
    cannot tell a blurred copy from a noisy one: there the sharper earns nothing."""
    if members >= 3 and most > 0 and value > SHARPNESS_EXCESS * most:
        return SHARPNESS_EXCESS * most / value
    return min(1.0, _ratio(value, SHARPNESS_TOLERANCE * most))


def deviations(grids: Sequence[np.ndarray]) -> list[float]:
    """For colour signatures of one picture's copies, aligned to one orientation (cells x RGB),
    how far each is from the cluster's consensus (the per-cell median): the largest
    per-cell mean absolute difference, in levels of 255."""
    # Plain Python: a cluster has a handful of 48-value signatures, where numpy's per-call
    # overhead costs more than the arithmetic (same results: the values are small integers).
    flat = [np.asarray(g, dtype=np.float64).reshape(-1).tolist() for g in grids]
    count = len(flat)
    if not count:
        raise ValueError("need at least one colour signature")
    low, high = (count - 1) // 2, count // 2
    consensus = []
    for column in zip(*flat, strict=True):
        ordered = sorted(column)
        consensus.append((ordered[low] + ordered[high]) / 2)
    out = []
    for values in flat:
        worst = 0.0
        for cell in range(0, len(values), 3):
            diff = (
                abs(values[cell] - consensus[cell])
                + abs(values[cell + 1] - consensus[cell + 1])
                + abs(values[cell + 2] - consensus[cell + 2])
            ) / 3
            worst = max(worst, diff)
        out.append(worst)
    return out


def total(parts: dict[str, float]) -> float:
    """The weighted sum, rounded to 6 decimals. Added one part at a time in ``WEIGHTS`` order
    (not ``sum()``, whose float rounding differs from Python 3.12 on): the same value on every
    Python, and the batch ranking (dedupdb/keeper.py) adds in the same order."""
    value = 0.0
    for name, weight in WEIGHTS.items():
        value += weight * parts[name]
    return round(value, 6)


def rank(cluster: Sequence[Candidate], rules: Rules | None = None) -> Ranking:
    """Rank a cluster's members, best first, with the reasons the first one is kept."""
    if not cluster:
        raise ValueError("a cluster has at least one member")
    rules = rules or Rules()
    ranked = []
    best = _Best.of(cluster)
    for candidate in cluster:
        parts = score_parts(candidate, cluster, best)
        ranked.append(Ranked(candidate, total(parts), parts, rule_value(candidate.path, rules)))
    for item in ranked:
        item.converted = next(
            ((o, how) for o in cluster if (how := conversion(item.candidate, o)) is not None),
            None,
        )
    for item in ranked:
        item.protected = _protected(item, cluster, best)
    ranked.sort(key=sort_key)
    for place, item in enumerate(ranked):
        item.rank = place
    return Ranking(ranked=ranked, reasons=explain(ranked, rules))


def _protected(item: Ranked, cluster: Sequence[Candidate], best: _Best) -> bool:
    """Whether the member keeps the camera's metadata (or is a camera raw file) and is not
    clearly worse than the cluster's best: a conversion, under METADATA_MIN_RESOLUTION of the
    largest picture, edited (cropped, framed, recoloured), or a lossy file under
    METADATA_MIN_BPP of the bits per pixel of the best lossy copy about as large."""
    c = item.candidate
    if not (c.has_metadata or c.is_raw) or item.converted is not None:
        return False
    large = METADATA_MIN_RESOLUTION * best.pixels
    if c.pixels < large or item.parts["unedited"] < 0.5:
        return False
    if c.lossless:
        return True
    peers = max(
        (o.bpp for o in cluster if not o.lossless and o.pixels >= large and codec(o) == codec(c)),
        default=0.0,
    )
    return c.bpp >= METADATA_MIN_BPP * peers
