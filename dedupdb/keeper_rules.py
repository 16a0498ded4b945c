"""The keeper's rules: which copy to keep, a quality score whose parts are shown, and the
reasons in plain words. ``keeper.rank_clusters`` applies them to every cluster at once (the
one implementation; tests/keeper_oracle.py ranks one cluster at a time in plain Python, as a
readable definition the tests compare it with). This module holds what both share: the
weights and thresholds, what the ranking knows of a member (``Candidate``), the tie-break and
folder rules, the conversion test, and the words of the reasons (``explain``).

Every member of a cluster gets a score in 0..1, the weighted sum of parts that each compare it
with the best member of its cluster. Sizes are those of the picture inside any borders, frames,
mats or letterbox bars added around it (stored at index time), so a padded copy is not taken
for a larger one, nor its original for a crop:

=============  ======  =====================================================================
part           weight  1.0 means
=============  ======  =====================================================================
resolution     0.30    the most pixels in the cluster
format         0.20    a camera-raw or lossless file (a re-encoded JPEG or WebP scores less)
size, bpp      0.05,   compression, not bytes: lossless 1.0; a JPEG its
               0.10    quality over GOOD_JPEG_QUALITY; another lossy file its bits per pixel
                       over COMPRESSION_TOLERANCE of the best of its codec; at most 1
sharpness      0.05    as sharp as most copies (variance of the Laplacian, stored at index
                       time, over the cluster's lower median, at most 1: a blurred copy
                       scores less, a noisy or over-sharpened one no more)
exif           0.15    camera make/model, date taken, and EXIF tags past the first
unedited       0.15    the framing and colours most copies share, and no added borders (a
                       cropped, framed, padded, brightened, grayscale or retouched copy
                       scores less)
=============  ======  =====================================================================

The keeper is chosen by, in order (docs/keeper.md says why):

1. the user's rules (``--prefer`` and ``--avoid`` globs on the path; a rule beats all else);
2. conversions last: a lossless file whose pixels are a same-size lossy member's decode
   (``conversion``) is that file at several times the bytes, so its source ranks above it;
3. the camera's metadata: a member with the camera's EXIF (camera, date taken) ranks above
   members without it, unless it is clearly worse (under METADATA_MIN_RESOLUTION of the
   largest picture, edited, or under METADATA_MIN_BPP of its lossy peers' bits per pixel);
4. the score;
5. deterministic tie-breaks for copies that score the same (always the case for exact copies,
   whose content is identical): a name that does not look like a copy ("IMG_1 (1).jpg",
   "Copy of ..."), the oldest modification time (a copy is written after its original,
   unless the copying kept the time), the default folder hints (a camera folder such as
   DCIM over Downloads, messenger, export, web and backup folders: ``folder_hint``), the
   shortest path, the first path in alphabetical order, the lowest image id.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .signals import conversion_fit, jpeg_quality

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
# Among lossy photo formats the name does not tell how much of the picture a file kept (an
# AVIF or HEIC re-encode of a JPEG holds no more than the JPEG): they rank alike, and their
# compression part tells them apart.
PHOTO_FORMATS = frozenset({"JPEG", "MPO", "WEBP", "HEIF", "HEIC", "AVIF", "JPEG2000"})
FORMAT_RANK_RAW = 1.0
FORMAT_RANK_LOSSLESS = 0.9
FORMAT_RANK_JPEG = 0.6
FORMAT_RANK_LOSSY = 0.5
FORMAT_RANK_PALETTE = 0.4  # GIF: lossless but 256 colours

# EXIF richness counts tags up to this many, past the first EXIF_TAGS_ANY (an orientation or
# resolution tag any program writes); "richer EXIF" needs this many more tags.
EXIF_TAGS_FULL = 20
EXIF_TAGS_ANY = 1
RICHER_EXIF_TAGS = 5
# Two aspect ratios closer than this (relative) are the same framing.
ASPECT_TOLERANCE = 0.01
# Colour fidelity: a copy whose most different cell of the 4x4 colour signature is within
# EDIT_FREE levels (of 255) of the cluster's consensus is unedited; EDIT_SPAN more is edited.
# Measured on the shared corpus: resized, recompressed, rotated and mirrored copies stay
# within 2; brightened and grayscale copies are typically 10-80 away, watermarks 2-4.
EDIT_FREE = 2.0
EDIT_SPAN = 6.0
# A lossy copy (other than a JPEG, judged by its quality) with at least this share of the
# bits per pixel of its codec's best copy scores as well on compression: which of two such
# copies was re-encoded from the other cannot be told from their sizes (a re-encode at a
# higher quality adds bytes, not picture), so bytes alone must not pick the keeper. Heavier
# compression (quality 40 against 90: about a quarter) still costs.
COMPRESSION_TOLERANCE = 1 / 3
# A JPEG saved at this IJG quality or above kept what its picture had (the libjpeg default;
# the public corpus's originals are saved at 75-100): a lower quality costs in proportion.
# The quality, not the bytes: a re-save at a higher quality makes more bytes of what an
# earlier save left.
GOOD_JPEG_QUALITY = 75
# A copy at least this sharp as the cluster's lower median scores 1 on sharpness: re-encodes
# and rotations move the measure by a few percent, which must not pick the keeper.
SHARPNESS_TOLERANCE = 0.8
# Noise and over-sharpening halos raise the sharpness measure as detail does, and far more
# than re-encoding or resizing moves it: a copy measuring over this many times what most
# copies of the picture do is an edited one (measured: gaussian noise of 20 levels x8,
# an unsharp mask of 300 % x13 on a 640x480 picture; re-encodes within 10 %).
SHARPNESS_EXCESS = 2.0
# Scores closer than this are a tie (floating-point noise must not pick the keeper).
SCORE_EPSILON = 1e-6
# A lossless picture whose DCT sample fits a same-size JPEG's quantization lattice at least
# this well (signals.conversion_fit: 0 for a picture that never was that JPEG, about 1 for
# its decode) is a conversion of it. Measured on the public corpus: the PNG conversions of its
# 17 JPEG originals fit 0.63-0.97 (ImageMagick's float and fast IDCTs too: within 0.02), PNG
# originals against their own JPEG exports at quality 50-98 at most 0.14.
CONVERSION_FIT = 0.4
# A JPEG whose luma steps average at most this is saved at the highest qualities: its decode
# is the lossless picture's to within a level whichever was made from which, and the fit has
# too few coefficients to tell (steps of 1 fit every picture).
NEAR_LOSSLESS_STEP = 1.5
# Lossy formats whose working-size picture is computed from the full decode, as a lossless
# file's is: equal stored sharpness (the same 256-pixel picture) means the same pixels.
FULL_DECODE_LOSSY = frozenset({"WEBP", "HEIF", "HEIC", "AVIF", "JPEG2000"})
# A member with the camera's EXIF ranks above one without unless it is clearly worse: less
# than this share of the largest picture, under half the bits per pixel of the best lossy
# copy of about its size, or edited (cropped, framed, recoloured).
METADATA_MIN_RESOLUTION = 0.9
METADATA_MIN_BPP = 0.5
# Default folder hints (the tie-breaks of copies of equal quality): path components of
# camera folders (DCF names such as 100CANON, 100APPLE), and of folders copies land in.
_CAMERA_FOLDER = re.compile(r"^(dcim|camera|camera roll|\d{3}[a-z0-9_]{5})$", re.IGNORECASE)
_COPY_FOLDER = re.compile(
    r"^(downloads?|whatsapp( images| media)?|telegram( images| desktop)?|exports?|exported|"
    r"web|backups?|\.?trash)$",
    re.IGNORECASE,
)

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
    colour_deviation: float = 0.0  # from the cluster's consensus (keeper.colour_deviations)
    # The picture inside added borders (None: the whole file, or not known for an old row).
    content_width: int | None = None
    content_height: int | None = None
    # What tells a conversion (signals.conversion_fit): a JPEG's luma quantization table, a
    # lossless picture's DCT sample.
    jpeg_quant: bytes | None = None
    dct_sample: bytes | None = None

    @property
    def has_metadata(self) -> bool:
        """The camera's EXIF: make/model or the date taken."""
        return self.camera is not None or self.taken_at is not None

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
    # A conversion of another member: (that member, how it is shown), else None.
    converted: tuple[Candidate, str] | None = None
    protected: bool = False  # has the camera's metadata and is not clearly worse


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


def folder_hint(path: str) -> tuple[int, str]:
    """The default folder hint of a path and the folder that gives it: -1 in a folder copies
    land in (Downloads, WhatsApp, Telegram, export, web, backup), +1 in a camera folder
    (DCIM, Camera, a DCF folder such as 100CANON), 0 otherwise."""
    folders = path.split("/")[:-1]
    for folder in folders:
        if _COPY_FOLDER.match(folder):
            return -1, folder
    for folder in folders:
        if _CAMERA_FOLDER.match(folder):
            return 1, folder
    return 0, ""


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
    if fmt in PHOTO_FORMATS:
        return FORMAT_RANK_JPEG
    return FORMAT_RANK_LOSSY


def metadata_tags(candidate: Candidate) -> int:
    """The EXIF tags that tell about the picture: none of a TIFF's, whose own structure
    (sizes, compression, strips) is stored as tags that Pillow counts with the EXIF."""
    return 0 if codec(candidate) == "TIFF" else candidate.exif_tags


def codec(candidate: Candidate) -> str:
    """The codec a lossy file's bytes are counted in: bits per pixel compare files of one
    codec only (a WebP needs fewer than a JPEG of the same picture)."""
    fmt = candidate.format.upper()
    return "JPEG" if fmt == "MPO" else fmt


def quality_of(candidate: Candidate) -> int | None:
    """A JPEG's estimated IJG quality (``signals.jpeg_quality``), None for other files and
    for rows indexed without the table."""
    if candidate.jpeg_quant is None or codec(candidate) != "JPEG" or candidate.lossless:
        return None
    return jpeg_quality(candidate.jpeg_quant)


def compression_text(keeper: Candidate, lower: Candidate) -> str:
    """The words for the keeper's lesser compression than ``lower``'s."""
    kq, lq = quality_of(keeper), quality_of(lower)
    if kq is not None and lq is not None:
        return f"less compressed: JPEG quality {kq} vs {lq}"
    return (
        f"less compressed: {human_bytes(keeper.size)} vs {human_bytes(lower.size)} "
        f"({keeper.bpp:.1f} vs {lower.bpp:.1f} bits per pixel)"
    )


def fidelity(candidate: Candidate) -> float:
    """1.0 for the cluster's consensus colours, falling to 0 for a clearly edited copy."""
    excess = candidate.colour_deviation - EDIT_FREE
    return min(1.0, max(0.0, 1.0 - excess / EDIT_SPAN))


def framing_of(cluster: Sequence[Candidate]) -> Candidate:
    """Whose framing (aspect ratio) the others are compared with: the largest member without
    added borders, if any (a picture measured inside bars is a few pixels off)."""
    return max(cluster, key=lambda c: (not c.bordered, c.pixels, -c.image_id))


def lower_median_sharpness(cluster: Sequence[Candidate]) -> float:
    """The sharpness most copies reach: the lower median of the cluster's."""
    sharpness = sorted(c.sharpness for c in cluster)
    return sharpness[(len(sharpness) - 1) // 2]


def same_framing(a: Candidate, b: Candidate) -> bool:
    if not a.aspect or not b.aspect:
        return True
    return abs(a.aspect - b.aspect) / b.aspect <= ASPECT_TOLERANCE


SAME_PIXELS = "same pixels"
SAME_PICTURE = "the same picture to within a level (saved at the highest quality)"


def conversion(lossless: Candidate, lossy: Candidate) -> str | None:
    """How ``lossless`` is shown to be a conversion of ``lossy`` (SAME_PIXELS or
    SAME_PICTURE), or None.

    Only a lossless file of the lossy one's size (no added borders) can be: for a JPEG, its
    DCT sample must lie on the JPEG's quantization lattice (``signals.conversion_fit``), or
    the JPEG must be saved at the highest qualities where no picture can be told from its
    decode; for a lossy format decoded in full at index time (WebP, HEIF, AVIF), the stored
    working-size pictures must be the same (equal sharpness measures).

    The proof is of pixels, not of history: a PNG that was once a JPEG (scikit-image's
    coins.png) fits the lattice of a JPEG saved from it with that JPEG's table, and that JPEG
    then holds the same picture in fewer bytes. File times are not asked: a copy that does
    not keep them reorders the files.
    """
    if not lossless.lossless or lossy.lossless or lossless.is_raw or lossy.is_raw:
        return None
    if lossless.bordered or lossy.bordered:
        return None
    if (lossless.width, lossless.height) != (lossy.width, lossy.height):
        return None
    fmt = lossy.format.upper()
    if fmt in ("JPEG", "MPO"):
        if lossy.jpeg_quant is None or not lossless.dct_sample:
            return None
        fit = conversion_fit(lossless.dct_sample, lossy.jpeg_quant)
        if fit is None:
            near = sum(lossy.jpeg_quant) / len(lossy.jpeg_quant) <= NEAR_LOSSLESS_STEP
            return SAME_PICTURE if near else None
        return SAME_PIXELS if fit >= CONVERSION_FIT else None
    if fmt in FULL_DECODE_LOSSY and lossless.sharpness > 0:
        return SAME_PIXELS if lossless.sharpness == lossy.sharpness else None
    return None


def sort_key(item: Ranked) -> tuple[int, bool, bool, float, bool, int, int, int, str, int]:
    c = item.candidate
    return (
        -item.rule,
        item.converted is not None,
        not item.protected,
        -round(item.score / SCORE_EPSILON),
        looks_like_copy(c.path),
        c.mtime_ns,
        -folder_hint(c.path)[0],
        len(c.path),
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
            o for o in others if o.rule < keeper.rule and sort_key(o)[1:] < sort_key(keeper)[1:]
        ]
        if passed:
            first = min(passed, key=sort_key)
            pattern = next(p for p in rules.avoid if matches(first.candidate.path, p))
            name = os.path.basename(first.candidate.path)
            higher = " scores higher but" if first.score > keeper.score + SCORE_EPSILON else ""
            reasons.append(f"{name}{higher} is in an avoided folder (--avoid {pattern})")

    reasons.extend(_precedence_reasons(keeper, others))

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
        o
        for o in others
        if abs(o.candidate.pixels - k.pixels) <= 0.01 * k.pixels
        and not o.candidate.lossless
        and codec(o.candidate) == codec(k)
    ]
    lower = min(same_size, key=lambda o: o.parts["bpp"], default=None)
    if not k.lossless and lower is not None and lower.parts["bpp"] < keeper.parts["bpp"]:
        add("bpp", compression_text(k, lower.candidate))
    worst = min(others, key=lambda o: o.parts["sharpness"]).candidate
    add(
        "sharpness", sharpness_text(k, worst, lower_median_sharpness([r.candidate for r in ranked]))
    )
    poorer = min(others, key=lambda o: o.parts["exif"]).candidate
    if keeper.parts["exif"] > _min_part(others, "exif"):
        if k.camera and not poorer.camera:
            taken = f", taken {k.taken_at[:10]}" if k.taken_at else ""
            add("exif", f"original EXIF ({k.camera}{taken})")
        elif k.taken_at and not poorer.taken_at:
            add("exif", f"has the date taken ({k.taken_at[:10]})")
        elif metadata_tags(k) - metadata_tags(poorer) >= RICHER_EXIF_TAGS:
            add("exif", f"richer EXIF: {metadata_tags(k)} vs {metadata_tags(poorer)} tags")
    best_framing = framing_of([r.candidate for r in ranked])
    cropped = next(
        (o.candidate for o in others if not same_framing(o.candidate, best_framing)), None
    )
    if same_framing(k, best_framing) and cropped is not None:
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


def _precedence_reasons(keeper: Ranked, others: Sequence[Ranked]) -> list[str]:
    """Why the keeper ranks above members the score alone would not put below it: its
    conversions, and copies without the camera's metadata."""
    k = keeper.candidate
    out = []
    for other in others:
        # (a conversion of a re-save of the keeper fits the keeper's lattice too: asked of
        # the keeper itself, whichever member the ranking found first)
        how = None if other.converted is None else conversion(other.candidate, k)
        if how is not None:
            o = other.candidate
            larger = f"{o.size / k.size:.1f}x larger" if k.size else "larger"
            out.append(
                f"the {format_name(o)} {os.path.basename(o.path)} is a conversion of this "
                f"{format_name(k)}: {how}, {larger}"
            )
            break
    if keeper.protected:
        higher = [o for o in others if not o.protected and o.score > keeper.score + SCORE_EPSILON
                  and o.converted is None and o.rule == keeper.rule]  # fmt: skip
        if higher:
            o = max(higher, key=lambda item: item.score).candidate
            lacks = "is clearly worse" if o.has_metadata else "has none"
            out.append(
                f"keeps the camera's metadata ({metadata_text(k)}); "
                f"{os.path.basename(o.path)} scores higher but {lacks}"
            )
    return out


def metadata_text(c: Candidate) -> str:
    """The camera and the date taken, as known ("camera raw" for a raw file without)."""
    words = [w for w in (c.camera, f"taken {c.taken_at[:10]}" if c.taken_at else None) if w]
    return ", ".join(words) or "camera raw"


def sharpness_text(keeper: Candidate, worst: Candidate, most: float) -> str:
    """Why the keeper beats ``worst`` (the lowest sharpness part) on sharpness."""
    if worst.sharpness > most:
        return (
            f"no added noise or over-sharpening: {os.path.basename(worst.path)} measures "
            f"{worst.sharpness:.3g} against {most:.3g} for most copies"
        )
    return f"sharper: {keeper.sharpness:.3g} vs {worst.sharpness:.3g}"


def _min_part(items: Sequence[Ranked], part: str) -> float:
    return min(item.parts[part] for item in items)


def _tie_break_reason(keeper: Ranked, others: Sequence[Ranked]) -> str:
    k = keeper.candidate
    identical = k.content_hash is not None and all(
        o.candidate.content_hash == k.content_hash for o in others
    )
    same = "identical copies" if identical else "same quality"
    rival = others[0].candidate
    return tie_break_text(same, k.path, rival.path, k.mtime_ns < rival.mtime_ns)


def tie_break_text(same: str, kept: str, rival: str, older: bool) -> str:
    """The tie-break that put the keeper (path ``kept``) above the next member (``rival``;
    ``older``: the keeper's modification time is earlier)."""
    if looks_like_copy(rival) and not looks_like_copy(kept):
        return f"{same}; the others' names look like copies"
    if older:
        return f"{same}; oldest file"
    (kh, kf), (rh, rf) = folder_hint(kept), folder_hint(rival)
    if kh > rh:
        if kh > 0:
            return f"{same}; in a camera folder ({kf}; a default hint, --avoid overrides it)"
        return f"{same}; the others are in a {rf} folder (a default hint, --prefer overrides it)"
    if len(kept) < len(rival):
        return f"{same}; shortest path"
    if kept < rival:
        return f"{same}; first path in alphabetical order"
    return f"{same}; lowest image id"
