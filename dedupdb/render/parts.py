"""Part-copies in words and outlines: what a cropped copy, a tilted copy or a picture inside a
screenshot is to the other copies of its cluster, and where the part lies in the whole.

A pair found by local features (``localmatch``) or by the screenshot stage carries its
``kind`` in plain words and its ``region``: the part's place in the whole picture, as
(left, top, right, bottom) fractions of the whole's picture inside any borders. The HTML
report, the CSV report and the review UI show them from the same functions here: one
sentence per member ("cropped copy — shows the lower left of the keeper, 36 % of it") and
outlines over the whole's thumbnail, each with a label a screen reader reads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..decode import DecodedImage, content_box, decode
from ..match import CROP, TONINGS, UNCROP
from ..report import Member, ReportCluster, ReportPair

# The plain-words kinds a pair may carry (``localmatch``); any other kind is shown as given.
CROPPED = "cropped copy"
TILTED = "tilted copy"
SCREENSHOT = "picture inside a screenshot"
# The kinds of a toned pair ("same picture, sepia"): a colour edit of the whole picture, not
# a part of it; the toned member says so, with no region and no outline.
TONED = frozenset(TONINGS.values())

# A region at least this share of the whole's width and height is (nearly) all of it: no
# place to name, no outline to draw (it would be the thumbnail's own edge).
NEARLY_ALL = 0.95
# A region's centre before this share of the width (height) lies left (upper); past its
# complement, right (lower); between, in the middle.
SIDE = 0.42

Region = tuple[float, float, float, float]


@dataclass(frozen=True)
class PartPair:
    """A pair of a cluster whose one member (``part``) shows part of the other (``whole``)."""

    part: int  # image id
    whole: int  # image id
    kind: str
    region: Region | None  # fractions of the whole's picture; None when not known


@dataclass(frozen=True)
class Outline:
    """A part drawn over the whole's thumbnail: where (fractions of the whole file's frame)
    and a label for it (shown on hover, read by screen readers)."""

    part: int  # the image id of the member that shows this part
    region: Region
    label: str


def part_pairs(cluster: ReportCluster) -> list[PartPair]:
    """The cluster's pairs that say what kind of copy they are, in the cluster's pair order."""
    return [_part_pair(p) for p in cluster.pairs if p.kind and p.kind not in TONED]


def has_parts(cluster: ReportCluster) -> bool:
    """Whether any pair of the cluster says what kind of copy it is (most have none: a report
    of 100,000 clusters asks this of each)."""
    return any(p.kind and p.kind not in TONED for p in cluster.pairs)


def toned_words(cluster: ReportCluster) -> dict[int, str]:
    """Image id -> "same picture, sepia" for the members toned from the keeper (which of two
    other members is the toned one, their pair does not say)."""
    words: dict[int, str] = {}
    for p in cluster.pairs:
        if p.kind in TONED and cluster.keeper in (p.a, p.b):
            toned = p.a if p.b == cluster.keeper else p.b
            words.setdefault(toned, str(p.kind))
    return words


def _part_pair(pair: ReportPair) -> PartPair:
    # CROP: b is the part of a; UNCROP: a is the part of b (match.Pair.transform).
    part, whole = (pair.a, pair.b) if pair.transform == UNCROP else (pair.b, pair.a)
    if pair.transform not in (CROP, UNCROP):  # no side known: the second is taken as the part
        part, whole = pair.b, pair.a
    region = _clean(pair.region)
    return PartPair(part=part, whole=whole, kind=str(pair.kind), region=region)


def _clean(region: Sequence[float] | None) -> Region | None:
    """The region as four fractions in order, or None when it is not one."""
    if region is None or len(region) != 4:
        return None
    try:
        left, top, right, bottom = (min(1.0, max(0.0, float(v))) for v in region)
    except (TypeError, ValueError):
        return None
    if not (left < right and top < bottom):
        return None
    return (left, top, right, bottom)


def where(region: Region | None) -> str | None:
    """Where a region lies in its whole, in words ("lower left", "upper part", "centre"), or
    None when it is (nearly) all of it or not known."""
    if region is None or nearly_all(region):
        return None
    left, top, right, bottom = region
    across = "" if right - left >= NEARLY_ALL else _side((left + right) / 2, "left", "right")
    down = "" if bottom - top >= NEARLY_ALL else _side((top + bottom) / 2, "upper", "lower")
    if across and down:
        return f"{down} {across}"
    if across or down:
        return f"{across or down} part"
    return "centre"


def _side(centre: float, before: str, after: str) -> str:
    if centre < SIDE:
        return before
    if centre > 1 - SIDE:
        return after
    return ""


def nearly_all(region: Region) -> bool:
    left, top, right, bottom = region
    return right - left >= NEARLY_ALL and bottom - top >= NEARLY_ALL


def share_text(region: Region) -> str:
    """The region's share of the whole's area, as a rounded percentage."""
    left, top, right, bottom = region
    return f"{max(1, round(100 * (right - left) * (bottom - top)))} %"


def member_pairs(cluster: ReportCluster) -> dict[int, PartPair]:
    """Image id -> the pair with a kind that describes that member: its pair with the keeper
    when it has one, else its first such pair. Members of no such pair are left out."""
    chosen: dict[int, PartPair] = {}
    if not has_parts(cluster):
        return chosen
    pairs = part_pairs(cluster)
    for member in cluster.members:
        mine = [p for p in pairs if member.image_id in (p.part, p.whole)]
        with_keeper = [p for p in mine if cluster.keeper in (p.part, p.whole)]
        if mine:
            chosen[member.image_id] = (with_keeper or mine)[0]
    return chosen


def member_words(cluster: ReportCluster) -> dict[int, str]:
    """Image id -> what that member is, in plain words (``describe``), for the members that
    ``member_pairs`` describes; the others are shown as they always were."""
    chosen = member_pairs(cluster)
    toned = toned_words(cluster) if any(p.kind in TONED for p in cluster.pairs) else {}
    if not chosen:
        return toned
    names = _names(cluster.members)
    words: dict[int, str] = {}
    kept = [p for p in part_pairs(cluster) if cluster.keeper in (p.part, p.whole)]
    if len(kept) > 1:
        # Paired with several copies: each of them says what it is; the keeper, what they are.
        kinds = list(dict.fromkeys(p.kind for p in kept))
        listed = " and ".join(f"a {kind}" for kind in kinds)
        words[cluster.keeper] = f"its copies include {listed}"
    for image_id, pair in chosen.items():
        if image_id in words:
            continue
        other = pair.whole if pair.part == image_id else pair.part
        other_name = "the keeper" if other == cluster.keeper else names.get(other, "another copy")
        words[image_id] = describe(pair, image_id, other_name)
    return {**toned, **words}


def _names(members: Sequence[Member]) -> dict[int, str]:
    return {m.image_id: os.path.basename(m.path) or m.path for m in members}


def describe(pair: PartPair, member: int, other: str) -> str:
    """What ``member`` (one of the pair) is to ``other`` (the other's name or "the keeper")."""
    place = where(pair.region)
    share = share_text(pair.region) if pair.region is not None and place else None
    is_part = member == pair.part
    if pair.kind == SCREENSHOT:
        if is_part:
            at = f", in its {place}" if place else ""
            return f"{SCREENSHOT} — {other} is a screenshot showing this picture{at}"
        at = f" in its {place} ({share} of the screen)" if place else ""
        return f"{SCREENSHOT} — this screenshot shows {other}{at}"
    if pair.kind == TILTED:  # which of the two was turned, the geometry does not say
        if is_part:
            of = f", showing the {place} of it ({share})" if place else ""
        else:
            of = f"; it shows the {place} of this picture ({share})" if place else ""
        return f"{TILTED} — the same picture as {other}, at another angle{of}"
    if is_part:
        of = f" — shows the {place} of {other}, {share} of it" if place else f" of {other}"
        return f"{pair.kind}{of}"
    if pair.kind == CROPPED:
        of = f" of its {place} ({share})" if place else ""
        return f"uncropped picture — {other} is a cropped copy{of}"
    of = f" of its {place} ({share})" if place else ""
    return f"whole picture — {other} is a {pair.kind}{of}"


def outlines(cluster: ReportCluster) -> dict[int, list[Outline]]:
    """Whole's image id -> the parts to outline over its thumbnail, in fractions of the
    whole's picture (``in_file_frame`` maps them onto a file with borders). A part that is
    (nearly) all of the whole, or whose region is not known, has no outline."""
    out: dict[int, list[Outline]] = {}
    if not has_parts(cluster):
        return out
    names = _names(cluster.members)
    for pair in part_pairs(cluster):
        if pair.region is None or nearly_all(pair.region) or pair.whole not in names:
            continue
        place = where(pair.region)
        label = (
            f"the part {names.get(pair.part, 'another copy')} shows ({pair.kind}): "
            f"the {place}, {share_text(pair.region)} of this picture"
        )
        out.setdefault(pair.whole, []).append(Outline(pair.part, pair.region, label))
    return out


def in_file_frame(member: Member, region: Region) -> Region:
    """A region of the member's picture inside its borders, as fractions of the whole file's
    frame (what a thumbnail shows). Files without added borders need no decoding."""
    unframed = (member.picture_width, member.picture_height) in (
        (None, None),
        (member.width, member.height),
    )
    if unframed:
        return region
    box = _content_fractions(member.raw_path, member.mtime_ns)
    if box is None:
        return region
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    return (
        round(left + region[0] * width, 4),
        round(top + region[1] * height, 4),
        round(left + region[2] * width, 4),
        round(top + region[3] * height, 4),
    )


@functools.lru_cache(maxsize=256)
def _content_fractions(path: bytes, mtime_ns: int) -> Region | None:
    """The picture's box inside its borders (``decode.content_box``, as indexing finds it),
    as fractions of the upright frame; None when the file cannot be read. ``mtime_ns`` keys
    the cache: a changed file is read again."""
    try:
        with open(path, "rb") as file:
            decoded = decode(file)
    except OSError:
        return None
    if not isinstance(decoded, DecodedImage):
        return None
    width, height = decoded.picture.size
    left, top, right, bottom = content_box(decoded.luma)
    return (left / width, top / height, right / width, bottom / height)
