"""Which copy to keep: a quality score whose parts are shown, and the reasons in plain words.

Every member of a cluster gets a score in 0..1, the weighted sum of parts that each compare it
with the best member of its cluster. Sizes are those of the picture inside any borders, frames,
mats or letterbox bars added around it (stored at index time), so a padded copy is not taken
for a larger one, nor its original for a crop:

=============  ======  =====================================================================
part           weight  1.0 means
=============  ======  =====================================================================
resolution     0.30    the most pixels in the cluster
format         0.20    a camera-raw or lossless file (a re-encoded JPEG or WebP scores less)
size           0.05    the largest lossy file (every lossless file scores 1.0)
bpp            0.10    the most bits per pixel among lossy files (lossless: 1.0)
sharpness      0.05    the sharpest (variance of the Laplacian, stored at index time)
exif           0.15    camera make/model, date taken, and the most EXIF tags
unedited       0.15    the framing and colours most copies share, and no added borders (a
                       cropped, framed, padded, brightened, grayscale or retouched copy
                       scores less)
=============  ======  =====================================================================

The keeper is chosen by, in order: the user's rules (``--prefer`` and ``--avoid`` globs on the
path; a rule always beats the score), the score, then deterministic tie-breaks for copies that
score the same (always the case for exact copies, whose content is identical): a name that
does not look like a copy ("IMG_1 (1).jpg", "Copy of ..."), the shortest path, the oldest
modification time, the lowest image id.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

WEIGHTS: dict[str, float] = {
    "resolution": 0.30,
    "format": 0.20,
    "size": 0.05,
    "bpp": 0.10,
    "sharpness": 0.05,
    "exif": 0.15,
    "unedited": 0.15,
}

RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
     ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".mos", ".raw", ".rwl"}
)  # fmt: skip
# How much of the picture a format keeps: originals and lossless files over re-encoded copies.
HIGH_EFFICIENCY_FORMATS = frozenset({"HEIF", "HEIC", "AVIF", "JPEG2000"})
FORMAT_RANK_RAW = 1.0
FORMAT_RANK_LOSSLESS = 0.9
FORMAT_RANK_HIGH_EFFICIENCY = 0.85
FORMAT_RANK_JPEG = 0.6
FORMAT_RANK_LOSSY = 0.5
FORMAT_RANK_PALETTE = 0.4  # GIF: lossless but 256 colours

# EXIF richness counts tags up to this many; "richer EXIF" needs this many more tags.
EXIF_TAGS_FULL = 20
RICHER_EXIF_TAGS = 5
# Two aspect ratios closer than this (relative) are the same framing.
ASPECT_TOLERANCE = 0.01
# Colour fidelity: a copy whose most different cell of the 4x4 colour signature is within
# EDIT_FREE levels (of 255) of the cluster's consensus is unedited; EDIT_SPAN more is edited.
# Measured on the shared corpus: resized, recompressed, rotated and mirrored copies stay
# within 2; brightened and grayscale copies are typically 10-80 away, watermarks 2-4.
EDIT_FREE = 2.0
EDIT_SPAN = 6.0
# Scores closer than this are a tie (floating-point noise must not pick the keeper).
SCORE_EPSILON = 1e-6

_COPY_NAME = re.compile(
    r"(^copy of )|(^copie de )|([ _-]copy( \d+)?$)|(\(\d+\)$)|( - copy$)|(^kopie van )|"
    r"([ _-]kopie$)|(~\d*$)|(\.bak$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Candidate:
    """What the ranking knows about one member of a cluster (all from the index)."""

    image_id: int
    path: str  # absolute, as text
    size: int
    mtime_ns: int
    width: int
    height: int
    format: str
    lossless: bool
    bit_depth: int = 8
    sharpness: float = 0.0
    exif_tags: int = 0
    taken_at: str | None = None
    camera: str | None = None  # make and model
    content_hash: bytes | None = None  # equal for byte-identical copies
    colour_deviation: float = 0.0  # from the cluster's consensus colours (see deviations)
    # The picture inside added borders (None: the whole file, or not known for an old row).
    content_width: int | None = None
    content_height: int | None = None

    @property
    def picture_width(self) -> int:
        return self.width if self.content_width is None else self.content_width

    @property
    def picture_height(self) -> int:
        return self.height if self.content_height is None else self.content_height

    @property
    def bordered(self) -> bool:
        """Borders, a frame, a mat or letterbox/pillarbox bars were added around the picture."""
        return (self.picture_width, self.picture_height) != (self.width, self.height)

    @property
    def pixels(self) -> int:
        """The picture's pixels (inside added borders)."""
        return self.picture_width * self.picture_height

    @property
    def bpp(self) -> float:
        """Bits per picture pixel: added borders compress to almost nothing."""
        return self.size * 8 / self.pixels if self.pixels else 0.0

    @property
    def aspect(self) -> float:
        """The picture's long side over its short side, so a rotated copy keeps its framing."""
        short, long = sorted((self.picture_width, self.picture_height))
        return long / short if short else 0.0

    @property
    def is_raw(self) -> bool:
        return os.path.splitext(self.path)[1].lower() in RAW_EXTENSIONS or self.format == "DNG"


@dataclass(frozen=True)
class Rules:
    """The user's folder rules: glob patterns on the path."""

    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()


@dataclass
class Ranked:
    """One member's score, its parts, and its place (0 = keeper)."""

    candidate: Candidate
    score: float
    parts: dict[str, float]
    rule: int  # +1 preferred, -1 avoided, 0 neither (or both)
    rank: int = 0


@dataclass
class Ranking:
    """A cluster's members best first, and why the first is the keeper."""

    ranked: list[Ranked]
    reasons: list[str] = field(default_factory=list)

    @property
    def keeper(self) -> Candidate:
        return self.ranked[0].candidate


def matches(path: str, pattern: str) -> bool:
    """A glob on the whole path; a pattern without ``/`` also matches any one folder or the
    file name (``--prefer originals`` matches ``/photos/originals/a.jpg``)."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/") if part)
    return False


def rule_value(path: str, rules: Rules) -> int:
    preferred = any(matches(path, p) for p in rules.prefer)
    avoided = any(matches(path, p) for p in rules.avoid)
    return int(preferred) - int(avoided)


def looks_like_copy(path: str) -> bool:
    """True for names like ``IMG_1 (1).jpg``, ``IMG_1 - Copy.jpg``, ``Copy of IMG_1.jpg``."""
    stem = os.path.splitext(os.path.basename(path))[0].strip()
    return bool(_COPY_NAME.search(stem))


def format_rank(candidate: Candidate) -> float:
    if candidate.is_raw:
        return FORMAT_RANK_RAW
    fmt = candidate.format.upper()
    if fmt == "GIF":
        return FORMAT_RANK_PALETTE
    if candidate.lossless:
        return FORMAT_RANK_LOSSLESS
    if fmt in HIGH_EFFICIENCY_FORMATS:
        return FORMAT_RANK_HIGH_EFFICIENCY
    if fmt in ("JPEG", "MPO"):
        return FORMAT_RANK_JPEG
    return FORMAT_RANK_LOSSY


def _ratio(value: float, best: float) -> float:
    return value / best if best > 0 else 1.0


def _exif_value(candidate: Candidate, most_tags: int) -> float:
    # Tag counts saturate: an orientation tag alone is not "rich EXIF", 20 tags are.
    tags = min(candidate.exif_tags, EXIF_TAGS_FULL) / EXIF_TAGS_FULL
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
    size: int  # of the lossy members
    bpp: float  # of the lossy members
    sharpness: float
    exif_tags: int

    @classmethod
    def of(cls, cluster: Sequence[Candidate]) -> _Best:
        return cls(
            framing=max(cluster, key=lambda c: (not c.bordered, c.pixels, -c.image_id)),
            pixels=max(c.pixels for c in cluster),
            size=max((c.size for c in cluster if not c.lossless), default=0),
            bpp=max((c.bpp for c in cluster if not c.lossless), default=0.0),
            sharpness=max(c.sharpness for c in cluster),
            exif_tags=max(c.exif_tags for c in cluster),
        )


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
        "size": 1.0 if candidate.lossless else _ratio(candidate.size, best.size),
        "bpp": 1.0 if candidate.lossless else _ratio(candidate.bpp, best.bpp),
        "sharpness": _ratio(candidate.sharpness, best.sharpness),
        "exif": _exif_value(candidate, best.exif_tags),
        "unedited": float(_same_framing(candidate, best.framing) and not candidate.bordered)
        * fidelity(candidate),
    }


def fidelity(candidate: Candidate) -> float:
    """1.0 for the cluster's consensus colours, falling to 0 for a clearly edited copy."""
    excess = candidate.colour_deviation - EDIT_FREE
    return min(1.0, max(0.0, 1.0 - excess / EDIT_SPAN))


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


def _same_framing(a: Candidate, b: Candidate) -> bool:
    if not a.aspect or not b.aspect:
        return True
    return abs(a.aspect - b.aspect) / b.aspect <= ASPECT_TOLERANCE


def total(parts: dict[str, float]) -> float:
    """The weighted sum, rounded to 6 decimals. Added one part at a time in ``WEIGHTS`` order
    (not ``sum()``, whose float rounding differs from Python 3.12 on): the same value on every
    Python, and the batch ranking (ranking.py) adds in the same order."""
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
    ranked.sort(key=_sort_key)
    for place, item in enumerate(ranked):
        item.rank = place
    return Ranking(ranked=ranked, reasons=explain(ranked, rules))


def _sort_key(item: Ranked) -> tuple[int, float, bool, int, int, str, int]:
    c = item.candidate
    return (
        -item.rule,
        -round(item.score / SCORE_EPSILON),
        looks_like_copy(c.path),
        len(c.path),
        c.mtime_ns,
        c.path,
        c.image_id,
    )


# ----------------------------------------------------------------------------- reasons


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _dims(c: Candidate) -> str:
    inside = " inside borders" if c.bordered else ""
    return f"{c.picture_width}x{c.picture_height}{inside}"


def format_name(c: Candidate) -> str:
    if c.is_raw:
        return f"camera raw ({os.path.splitext(c.path)[1].lstrip('.').upper() or c.format})"
    fmt = c.format.upper()
    if fmt == "MPO":
        fmt = "JPEG"
    if fmt == "WEBP":
        return "lossless WebP" if c.lossless else "lossy WebP"
    if c.lossless and fmt not in ("PNG", "TIFF", "BMP", "GIF"):
        return f"lossless {fmt}"
    return fmt


def no_borders_text(framed: Candidate) -> str:
    return (
        f"no added borders: {os.path.basename(framed.path)} is {framed.width}x{framed.height} "
        f"with a frame, mat or bars around {framed.picture_width}x{framed.picture_height}"
    )


def _aspect_text(c: Candidate) -> str:
    return f"{c.aspect:.2f}:1"


def explain(ranked: Sequence[Ranked], rules: Rules) -> list[str]:
    """Plain words for why ranked[0] beats the others, most important first."""
    keeper = ranked[0]
    others = ranked[1:]
    if not others:
        return ["only copy"]
    k = keeper.candidate
    reasons: list[str] = []
    if keeper.rule > 0 and any(o.rule <= 0 for o in others):
        pattern = next(p for p in rules.prefer if matches(k.path, p))
        reasons.append(f"in a preferred folder (--prefer {pattern})")
    else:
        # An avoid rule is a reason only when it changed the outcome: a copy that scores
        # higher than the keeper was passed over because of it.
        passed = [
            o for o in others if o.rule < keeper.rule and _sort_key(o)[1:] < _sort_key(keeper)[1:]
        ]
        if passed:
            first = min(passed, key=_sort_key)
            pattern = next(p for p in rules.avoid if matches(first.candidate.path, p))
            name = os.path.basename(first.candidate.path)
            higher = " scores higher but" if first.score > keeper.score + SCORE_EPSILON else ""
            reasons.append(f"{name}{higher} is in an avoided folder (--avoid {pattern})")

    # The parts where the keeper beats every-or-some other member, by weighted advantage.
    advantages: list[tuple[float, str]] = []

    def add(part: str, text: str) -> None:
        gain = max(keeper.parts[part] - o.parts[part] for o in others) * WEIGHTS[part]
        if gain > SCORE_EPSILON:
            advantages.append((gain, text))

    smaller = [o.candidate for o in others if o.candidate.pixels < k.pixels]
    if smaller and k.pixels >= max(o.candidate.pixels for o in others):
        versus = max(smaller, key=lambda c: (c.pixels, -c.image_id))  # the next largest
        add("resolution", f"largest: {_dims(k)} vs {_dims(versus)}")
    worse_format = min(others, key=lambda o: o.parts["format"]).candidate
    if format_rank(worse_format) < format_rank(k):
        original = "original format" if k.is_raw else "better format"
        add("format", f"{original}: {format_name(k)} vs {format_name(worse_format)}")
    same_size = [
        o.candidate
        for o in others
        if abs(o.candidate.pixels - k.pixels) <= 0.01 * k.pixels and not o.candidate.lossless
    ]
    lower_bpp = min(same_size, key=lambda c: c.bpp, default=None)
    if not k.lossless and lower_bpp is not None and lower_bpp.bpp < k.bpp * 0.95:
        add(
            "bpp",
            f"less compressed: {human_bytes(k.size)} vs {human_bytes(lower_bpp.size)} "
            f"({k.bpp:.1f} vs {lower_bpp.bpp:.1f} bits per pixel)",
        )
    blurrier = min(others, key=lambda o: o.candidate.sharpness).candidate
    if blurrier.sharpness < k.sharpness * 0.9:
        add("sharpness", f"sharper: {k.sharpness:.3g} vs {blurrier.sharpness:.3g}")
    poorer = min(others, key=lambda o: o.parts["exif"]).candidate
    if keeper.parts["exif"] > _min_part(others, "exif"):
        if k.camera and not poorer.camera:
            taken = f", taken {k.taken_at[:10]}" if k.taken_at else ""
            add("exif", f"original EXIF ({k.camera}{taken})")
        elif k.taken_at and not poorer.taken_at:
            add("exif", f"has the date taken ({k.taken_at[:10]})")
        elif k.exif_tags - poorer.exif_tags >= RICHER_EXIF_TAGS:
            add("exif", f"richer EXIF: {k.exif_tags} vs {poorer.exif_tags} tags")
    best_framing = _Best.of([r.candidate for r in ranked]).framing
    cropped = next(
        (o.candidate for o in others if not _same_framing(o.candidate, best_framing)), None
    )
    if _same_framing(k, best_framing) and cropped is not None:
        add("unedited", f"uncropped: {_aspect_text(k)} vs {_aspect_text(cropped)} framing")
    elif not k.bordered and any(o.candidate.bordered for o in others):
        framed = next(o.candidate for o in others if o.candidate.bordered)
        add("unedited", no_borders_text(framed))
    elif fidelity(k) == 1.0 and any(fidelity(o.candidate) < 0.5 for o in others):
        add("unedited", "original colours (another copy is brightened, grayscale or retouched)")
    advantages.sort(key=lambda item: -item[0])
    reasons.extend(text for _, text in advantages)
    better = max(others, key=lambda o: o.score)
    if (
        keeper.rule > 0
        and keeper.rule > better.rule
        and better.score > keeper.score + SCORE_EPSILON
    ):
        reasons.append(
            f"kept by your rule although {os.path.basename(better.candidate.path)} scores "
            f"higher ({better.score:.2f} vs {keeper.score:.2f})"
        )

    if not advantages and not reasons:
        reasons.append(_tie_break_reason(keeper, others))
    return reasons


def _min_part(items: Sequence[Ranked], part: str) -> float:
    return min(item.parts[part] for item in items)


def _tie_break_reason(keeper: Ranked, others: Sequence[Ranked]) -> str:
    k = keeper.candidate
    identical = k.content_hash is not None and all(
        o.candidate.content_hash == k.content_hash for o in others
    )
    same = "identical copies" if identical else "same quality"
    rival = others[0].candidate
    if looks_like_copy(rival.path) and not looks_like_copy(k.path):
        return f"{same}; the others' names look like copies"
    if len(k.path) < len(rival.path):
        return f"{same}; shortest path"
    if k.mtime_ns < rival.mtime_ns:
        return f"{same}; oldest file"
    if k.path < rival.path:
        return f"{same}; first path in alphabetical order"
    return f"{same}; lowest image id"
