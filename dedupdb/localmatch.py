"""The second matching stage: copies found by local features (``features``), verified by
geometry. Finds what whole-frame hashes miss: heavy and off-centre crops, tilts, a mild
perspective, stickers, and a picture shown inside a screenshot.

1. Candidates (``candidate_pairs``): descriptor bucket voting, a multi-table locality-sensitive
   hash over the stored binary descriptors. Each of ``TABLES`` tables keys every descriptor by
   three of its 32 bytes (disjoint bytes per table); two pictures get a vote for every two
   descriptors that share a key, and pairs with at least ``MIN_VOTES`` votes are candidates.
   A key shared by more than ``BUCKET_CAP`` descriptors is a stop word (a flat texture, or UI
   chrome that thousands of screenshots share) and votes for nothing. Its recall against an
   exhaustive search is measured in docs/matching-heavy.md.
2. Verification (``verify``): mutual nearest descriptors (Hamming), then a similarity
   transform (rotation, uniform scale, translation) fitted with RANSAC
   (``cv2.estimateAffinePartial2D``). A pair is a copy when at least ``MIN_INLIERS``
   correspondences agree, and they are spread over the region the two pictures share
   (``MIN_SPREAD``): a screenshot of another picture in the same phone chrome, or another page
   of one letterhead, agrees only in the chrome or the letterhead. The shared region's content
   is then compared on the stored thumbnails, aligned by the transform (``MIN_CONTENT``).
3. Guards: pictures that look like printed text (``features.text_likeness``) are not matched by
   this stage (pages of one template share layout and glyphs everywhere), and a pair of them
   that the hashes joined is kept only if their keypoints say it is one page (``same_page``).
   Two frames that
   lie nearly whole inside each other, upright (``OVERLAID``: a copy under stickers, a label
   or a caption), are a copy only when their content agrees once the cells that agree worst
   are left out and not before (``_robust_content``: something covers part of it; a pair
   that agrees all over, such as two colour versions of one drawing, is the hashes'), neither
   lies on a flat background (product shots of one outline), and, as screenshots of
   different pictures in one app's chrome agree that way too, their inner pictures
   (``images.inner_picture``) agree (``match.inner_veto``) or neither has one nor is
   screen-shaped. Such a copy is one frame with its picture: ``twin_pairs`` gives it its
   picture's pairs in the picture's cluster (crops, tilts), which complete linkage needs.
   The part's mean colour and its region's in the whole must pass the hash stage's colour
   guard (``colours_agree``). A pair the hashes already joined is looked at again only to
   find copies with overlays among them (for ``twin_pairs``).

Everything here works on arrays; ``find_local_matches`` takes the features of the rows to
compare and returns ``LocalMatch`` values, which ``deep_pairs`` turns into pairs. The report
stage reads the stored features (``store.catalog.local_features``) and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import features
from .features import LocalFeatures
from .hashes import DIHEDRAL_NAMES
from .match import (
    CROP,
    UNCROP,
    MatchOptions,
    Pair,
    colour_guard,
    compare_signatures,
    inner_veto,
    resample_to_window,
)
from .search import INVERSE, Candidates
from .store.catalog import Rows

TABLES = 10  # bytes 0-29 of the 32, three per table
MIN_VOTES = 2
PARTNERS = 12  # the most voted partners of each picture that are verified
BUCKET_CAP = 24
MAX_DESCRIPTOR_DISTANCE = 64  # of 256 bits, for a correspondence
MIN_INLIERS = 14
RANSAC_PIXELS = 6.0  # reprojection error, in feature-image pixels (~512 x 384)
SPREAD_GRID = 8
MIN_CONTENT = 0.72
# With this many agreeing keypoints the geometry is evidence enough for a laxer content check:
# stickers or a caption over a copy change the thumbnail's gradients (0.2-0.7), while pictures
# of different families agree on 25 keypoints at most (make_heavy_corpus, 20 families).
STRONG_INLIERS = 40
MIN_CONTENT_STRONG = 0.4
TEXT_LIKE = 0.6
SAME_PAGE_SPREAD = 0.65  # for two text-like pictures to be one page (``same_page``)
# A picture's share of the other's frame below which its region is "inside" the other.
INSIDE = 0.85
SCREEN_SHARE = 0.35
# Below this a turn is no tilt: the hashes' crop windows find copies turned by 1-3 degrees,
# and two frames of one size that overlap whole (phone chrome, mirrored) fit a small spurious
# turn on a few keypoints.
TILT_DEGREES = 5.0
# A copy with overlays (each frame nearly whole inside the other, upright): stickers, a label
# or a caption cover part of it. Its content must agree (MIN_COVERED) without the DROP share
# of CELL x CELL thumbnail cells that agree worst. Product shots of one outline on a flat
# background (``_flat_background``) agree that way as well as copies do (another label,
# another motif): they are left to the hashes' fine-hash guard.
# Neither picture may be screen-shaped (height at least TALL times the width) unless both
# show an inner picture (``inner_pictures_agree``).
CELL = 8
DROP = 0.25
MIN_COVERED = 0.72
COVERED_GAIN = 0.15
FLAT = 0.5  # as match.LOOKALIKE_FLAT
LIGHT = 192
LIGHT_RING = 0.5
LIGHT_FLAT = 0.4
FLAT_LEVELS = 8
TALL = 1.6

# Plain-words kinds of a local match (``LocalMatch.kind``).
CROPPED = "cropped copy"
SCREENSHOT = "picture inside a screenshot"
TILTED = "tilted copy"
OVERLAID = "copy with overlays"


@dataclass(frozen=True)
class LocalMatch:
    """Two pictures (indices into the features given) found to show the same content.

    ``part`` is the index of the picture whose content lies inside the other's frame (the
    cropped or embedded one); ``region`` is where, as fractions (left, top, right, bottom)
    of the other's frame. ``share`` is the part's share of the other's area."""

    a: int
    b: int
    part: int
    kind: str
    inliers: int
    region: tuple[float, float, float, float]
    share: float
    angle: float  # degrees, b relative to a
    scale: float  # b's feature-image pixels per a's
    spread: float
    content: float
    shift: float  # the translation, as a share of the frame
    # For a copy with overlays only: the content's agreement without its worst cells
    # (``_robust_content``), 0.0 otherwise.
    covered: float = 0.0


# ---------------------------------------------------------------- candidates


def candidate_pairs(
    features: Sequence[LocalFeatures], skip: np.ndarray | None = None
) -> np.ndarray:
    """(k, 2) int64 index pairs (i < j) whose descriptors collide in at least MIN_VOTES
    buckets. ``skip``: bool per picture, True for pictures that take no part."""
    n = len(features)
    counts = np.array([len(f.descriptors) for f in features], dtype=np.int64)
    if skip is not None:
        counts = np.where(skip, 0, counts)
    if n < 2 or counts.sum() == 0:
        return np.zeros((0, 2), np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    blocks = [f.descriptors for f, c in zip(features, counts.tolist(), strict=True) if c]
    descriptors = np.concatenate(blocks).astype(np.int64)
    codes: list[np.ndarray] = []
    for table in range(TABLES):
        first = 3 * table
        key = (
            (descriptors[:, first] << 16)
            | (descriptors[:, first + 1] << 8)
            | descriptors[:, first + 2]
        )
        codes.append(_bucket_pairs(key, owner, n))
    code = np.concatenate(codes)
    if not len(code):
        return np.zeros((0, 2), np.int64)
    pairs, votes = np.unique(code, return_counts=True)
    keep = votes >= MIN_VOTES
    found = np.stack([pairs[keep] // n, pairs[keep] % n, votes[keep]], axis=1)
    return found[_best_of_each(found, PARTNERS), :2]


def _best_of_each(found: np.ndarray, count: int) -> np.ndarray:
    """Whether each (i, j, votes) row is among the ``count`` most voted partners of i or of j.

    Votes are not comparable between pictures (a detailed texture collides everywhere), so a
    global vote threshold either floods verification or drops copies; each picture's own best
    partners are what is worth verifying."""
    keep = np.zeros(len(found), dtype=bool)
    for side in (0, 1):
        order = np.lexsort((-found[:, 2], found[:, side]))
        owners = found[order, side]
        rank = np.arange(len(order)) - np.searchsorted(owners, owners)
        keep[order[rank < count]] = True
    return keep


def _bucket_pairs(key: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Pair codes (i * n + j, i < j) of every two descriptors of different pictures that share
    a key, one per distinct picture pair and bucket; buckets above BUCKET_CAP are dropped."""
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(key)])
    size_of = np.repeat(sizes, sizes)
    keep = (size_of > 1) & (size_of <= BUCKET_CAP)
    key, owner = key[keep], owner[keep]
    found = []
    for offset in range(1, BUCKET_CAP):
        if offset >= len(key):
            break
        same = key[offset:] == key[:-offset]
        if not same.any():
            break
        x, y = owner[:-offset][same], owner[offset:][same]
        differ = x != y
        x, y = x[differ], y[differ]
        pair = np.minimum(x, y) * n + np.maximum(x, y)
        found.append((pair << 24) | key[:-offset][same][differ])
    if not found:
        return np.zeros(0, np.int64)
    # A pair of pictures votes once per bucket, however many descriptors it has there.
    out: np.ndarray = np.unique(np.concatenate(found)) >> 24
    return out


# ---------------------------------------------------------------- verification


def verify(first: LocalFeatures, second: LocalFeatures) -> LocalMatch | None:
    """Whether ``second`` shows content of ``first`` (or the reverse): see the module."""
    cv2 = features.opencv()

    if len(first.descriptors) < MIN_INLIERS or len(second.descriptors) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    matches = [
        m
        for m in matcher.match(first.descriptors, second.descriptors)
        if m.distance <= MAX_DESCRIPTOR_DISTANCE
    ]
    if len(matches) < MIN_INLIERS:
        return None
    src = first.points[[m.queryIdx for m in matches]]
    dst = second.points[[m.trainIdx for m in matches]]
    model, mask = cv2.estimateAffinePartial2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=RANSAC_PIXELS,
        maxIters=2000,
        confidence=0.995,
    )
    if model is None or mask is None:
        return None
    inlier = mask.ravel().astype(bool)
    inliers = int(inlier.sum())
    if inliers < MIN_INLIERS:
        return None
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if not 0.15 <= scale <= 6.5:
        return None
    angle = float(np.degrees(np.arctan2(model[1, 0], model[0, 0])))
    inverse = cv2.invertAffineTransform(model)
    # Each picture's frame, mapped into the other, clipped to the other's frame.
    share_a = _inside_share(first, second, model)  # of a's area, inside b's frame
    share_b = _inside_share(second, first, inverse)  # of b's area, inside a's frame
    spread = min(
        _spread(first, src[inlier], second, inverse),
        _spread(second, dst[inlier], first, model),
    )
    content = max(_content(first, second, model), _content(second, first, inverse))
    shift = float(np.hypot(model[0, 2] / second.width, model[1, 2] / second.height))
    part = 0 if share_a >= share_b else 1
    container, contained, forward = (
        (second, first, model) if part == 0 else (first, second, inverse)
    )
    region = _region(contained, container, forward)
    share = float((region[2] - region[0]) * (region[3] - region[1]))  # of the container's frame
    kind = _kind(angle, share, container, min(share_a, share_b), max(share_a, share_b))
    covered = 0.0
    if kind == OVERLAID and not _flat_background(first, second):
        covered = max(
            _robust_content(first, second, model), _robust_content(second, first, inverse)
        )
    return LocalMatch(
        a=-1,
        b=-1,
        part=part,
        kind=kind,
        inliers=inliers,
        region=region,
        share=round(share, 3),
        angle=round(angle, 1),
        scale=round(scale, 3),
        spread=round(spread, 3),
        content=round(content, 3),
        shift=round(shift, 3),
        covered=round(covered, 3),
    )


def accepted(found: LocalMatch) -> bool:
    """The guards on a verified match (see the module): its content, and no identity."""
    if found.kind == OVERLAID:  # upright only: its pair is a full-frame "identity" pair
        covering = found.covered - found.content >= COVERED_GAIN
        return found.covered >= MIN_COVERED and covering and abs(found.angle) < TILT_DEGREES
    content = MIN_CONTENT if found.inliers < STRONG_INLIERS else MIN_CONTENT_STRONG
    return found.content >= content


def _corners(f: LocalFeatures) -> np.ndarray:
    return np.array([[0, 0], [f.width, 0], [f.width, f.height], [0, f.height]], np.float32)


def _apply(model: np.ndarray, points: np.ndarray) -> np.ndarray:
    out: np.ndarray = points @ model[:, :2].T + model[:, 2]
    return out


def _inside_share(source: LocalFeatures, target: LocalFeatures, model: np.ndarray) -> float:
    """The share of ``source``'s frame that lands inside ``target``'s (sampled on a grid)."""
    xs = (np.arange(16) + 0.5) / 16 * source.width
    ys = (np.arange(16) + 0.5) / 16 * source.height
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    mapped = _apply(model, grid)
    inside = (
        (mapped[:, 0] >= 0)
        & (mapped[:, 0] <= target.width)
        & (mapped[:, 1] >= 0)
        & (mapped[:, 1] <= target.height)
    )
    return float(inside.mean())


def _spread(
    image: LocalFeatures, inliers: np.ndarray, other: LocalFeatures, to_other: np.ndarray
) -> float:
    """Of the grid cells of ``image`` that hold keypoints and lie in the region shared with
    ``other``, the share that holds an inlier. Copies agree all over what they share; a
    letterhead or a phone's chrome agrees only in its own cells."""
    cells = _cells(image, image.points)
    mapped = _apply(to_other, image.points)
    shared = (
        (mapped[:, 0] >= 0)
        & (mapped[:, 0] <= other.width)
        & (mapped[:, 1] >= 0)
        & (mapped[:, 1] <= other.height)
    )
    candidates = set(cells[shared].tolist())
    if not candidates:
        return 0.0
    hit = set(_cells(image, inliers).tolist()) & candidates
    return len(hit) / len(candidates)


def _cells(image: LocalFeatures, points: np.ndarray) -> np.ndarray:
    col = np.clip((points[:, 0] / image.width * SPREAD_GRID).astype(np.int64), 0, SPREAD_GRID - 1)
    row = np.clip((points[:, 1] / image.height * SPREAD_GRID).astype(np.int64), 0, SPREAD_GRID - 1)
    out: np.ndarray = row * SPREAD_GRID + col
    return out


def _content(first: LocalFeatures, second: LocalFeatures, model: np.ndarray) -> float:
    """Correlation of the two thumbnails' gradients over their shared region, ``first``'s
    warped into ``second``'s frame by the transform: the shared region's content, not just
    its keypoints, must agree."""
    aligned = _aligned(first, second, model)
    if aligned is None:
        return 0.0
    a, b, mask = aligned
    return _correlation(a[mask], b[mask])


def _robust_content(first: LocalFeatures, second: LocalFeatures, model: np.ndarray) -> float:
    """``_content`` without the cells (``CELL`` thumbnail pixels square) that agree worst, a
    ``DROP`` share of those in the shared region: stickers, a label or a caption over a copy
    change its gradients there, and only there."""
    aligned = _aligned(first, second, model)
    if aligned is None:
        return 0.0
    a, b, mask = aligned
    height, width = b.shape
    per_row = -(-width // CELL)
    cell = (np.arange(height) // CELL)[:, None] * per_row + (np.arange(width) // CELL)[None, :]
    error = (_standard(a, mask) - _standard(b, mask)) ** 2
    sums = np.bincount(cell[mask], weights=error[mask], minlength=per_row * height)
    counts = np.bincount(cell[mask], minlength=per_row * height)
    used = np.flatnonzero(counts >= CELL * CELL // 4)
    if not len(used):
        return 0.0
    worst = used[np.argsort(-(sums[used] / counts[used]))][: round(DROP * len(used))]
    keep = mask & ~np.isin(cell, worst)
    return _correlation(a[keep], b[keep])


def _aligned(
    first: LocalFeatures, second: LocalFeatures, model: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The gradients of ``first``'s thumbnail warped onto ``second``'s and of ``second``'s,
    and the mask of their shared region (None: too small to compare)."""
    cv2 = features.opencv()

    th, tw = second.thumb.shape
    fh, fw = first.thumb.shape
    # feature pixels -> thumbnail pixels on each side
    to_first = np.diag([first.width / fw, first.height / fh, 1.0])
    from_second = np.diag([tw / second.width, th / second.height, 1.0])
    full = np.vstack([model, [0, 0, 1]])
    warp = (from_second @ full @ to_first)[:2]
    warped = cv2.warpAffine(
        first.thumb.astype(np.float32), warp, (tw, th), flags=cv2.INTER_LINEAR, borderValue=-1
    )
    valid = cv2.warpAffine(
        np.ones((fh, fw), np.float32), warp, (tw, th), flags=cv2.INTER_NEAREST, borderValue=0
    )
    mask = cv2.erode(valid, np.ones((3, 3), np.uint8)) > 0.5
    if mask.sum() < 24:
        return None
    return _gradient(warped), _gradient(second.thumb.astype(np.float32)), mask


def _standard(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` less their mean over ``mask``, in standard deviations."""
    inside = values[mask]
    out: np.ndarray = (values - inside.mean()) / (inside.std() + 1e-6)
    return out


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def _flat_background(first: LocalFeatures, second: LocalFeatures) -> bool:
    """Whether either picture lies on a flat background: at least FLAT of it at the level of
    a uniform border ring (``finehash.flat_background``), or, on a light page (the ring's
    median at least LIGHT), at least LIGHT_FLAT of it at the level of a ring that is only
    half uniform (LIGHT_RING): a tall bottle on white reaches the top and bottom of its
    frame. Dark backgrounds (a night sky, space) need the uniform ring."""
    return _on_flat(first.thumb) or _on_flat(second.thumb)


def _on_flat(thumb: np.ndarray) -> bool:
    from .finehash import flat_background

    if flat_background(thumb) >= FLAT:
        return True
    gray = thumb.astype(np.int16)
    if min(gray.shape) < 4:
        return False
    ring = np.concatenate([gray[:2].ravel(), gray[-2:].ravel(), gray[:, :2].ravel(),
                           gray[:, -2:].ravel()])  # fmt: skip
    level = float(np.median(ring))
    near = FLAT_LEVELS
    return (
        level >= LIGHT
        and float(np.mean(np.abs(ring - level) <= near)) >= LIGHT_RING
        and float(np.mean(np.abs(gray - level) <= near)) >= LIGHT_FLAT
    )


def _gradient(image: np.ndarray) -> np.ndarray:
    """Pixel values plus their local gradient magnitude: flat areas (white page, sky) weigh
    little beside the structure."""
    cv2 = features.opencv()

    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    out: np.ndarray = np.hypot(gx, gy)
    return out


def _region(
    contained: LocalFeatures, container: LocalFeatures, model: np.ndarray
) -> tuple[float, float, float, float]:
    """The contained picture's frame mapped into the container's, as clipped fractions."""
    mapped = _apply(model, _corners(contained))
    left, top = mapped.min(axis=0)
    right, bottom = mapped.max(axis=0)
    return (
        round(float(np.clip(left / container.width, 0, 1)), 3),
        round(float(np.clip(top / container.height, 0, 1)), 3),
        round(float(np.clip(right / container.width, 0, 1)), 3),
        round(float(np.clip(bottom / container.height, 0, 1)), 3),
    )


def _kind(angle: float, share: float, container: LocalFeatures, low: float, high: float) -> str:
    """The match in plain words, from the geometry."""
    if _off_right_angle(angle) >= TILT_DEGREES:
        return TILTED
    if low >= INSIDE:  # each picture lies (nearly) whole inside the other: the same frame
        return OVERLAID
    # One whole picture in a small part of a phone screen's shape (a post, a chat): a
    # screenshot; a turned copy's frame is no screen. Any other part of a picture is a crop.
    upright = round(angle / 90) % 4 == 0
    tall = container.height >= 1.6 * container.width
    if high >= INSIDE and upright and tall and share < SCREEN_SHARE:
        return SCREENSHOT
    return CROPPED


def _off_right_angle(angle: float) -> float:
    """Degrees from the nearest multiple of 90: a quarter turn is a rotation, not a tilt."""
    return abs(angle - 90 * round(angle / 90))


# ---------------------------------------------------------------- the stage


def find_local_matches(
    features: Sequence[LocalFeatures | None], known: set[tuple[int, int]] | None = None
) -> list[LocalMatch]:
    """Verified, guarded matches among ``features`` (None: a picture without stored
    features), as index pairs. Of the pairs in ``known`` (i < j: the hashes joined them),
    only copies with overlays are returned: their pair stands, and ``twin_pairs`` gives the
    copy its picture's other partners."""
    present = [f if f is not None else _EMPTY for f in features]
    skip = np.array([f is None or f.textlike >= TEXT_LIKE for f in features], dtype=bool)
    out = []
    for i, j in candidate_pairs(present, skip).tolist():
        again = bool(known) and (i, j) in known  # type: ignore[operator]
        found = verify(present[i], present[j])
        if found is None or not accepted(found) or (again and found.kind != OVERLAID):
            continue
        out.append(_with_ids(found, i, j))
    return out


def _with_ids(found: LocalMatch, a: int, b: int) -> LocalMatch:
    return LocalMatch(
        a=a,
        b=b,
        part=a if found.part == 0 else b,
        kind=found.kind,
        inliers=found.inliers,
        region=found.region,
        share=found.share,
        angle=found.angle,
        scale=found.scale,
        spread=found.spread,
        content=found.content,
        shift=found.shift,
        covered=found.covered,
    )


_EMPTY = LocalFeatures(
    width=1,
    height=1,
    points=np.zeros((0, 2), np.float32),
    descriptors=np.zeros((0, 32), np.uint8),
    thumb=np.zeros((1, 1), np.uint8),
    textlike=0.0,
)


# ---------------------------------------------------------------- the pairs


def deep_contents(rows: Rows) -> list[bytes]:
    """The content hashes whose stored features ``deep_pairs`` reads (of the rows that are
    not low-information), in the order it takes them."""
    return list(_content_groups(rows))


def _content_groups(rows: Rows) -> dict[bytes, list[int]]:
    groups: dict[bytes, list[int]] = {}
    for row, digest in enumerate(rows.content):
        if not rows.low_information[row]:
            groups.setdefault(digest, []).append(row)
    return groups


def deep_pairs(
    rows: Rows,
    stored: Mapping[bytes, LocalFeatures],
    known: Sequence[Pair],
    options: MatchOptions,
) -> list[Pair]:
    """The hash stage's pairs (``known``) with this stage applied, sorted by (a, b): the
    pairs of verified local matches added (one per two contents, for every two files of
    them), and the pairs of two text-like pictures that are not the same page dropped
    (``same_page``). ``stored``: the features of the contents (``deep_contents``) that have
    them."""
    groups = _content_groups(rows)
    contents = list(groups)
    ids = rows.ids.tolist()
    index_of = {digest: i for i, digest in enumerate(contents)}
    content_of_id = {ids[r]: index_of[d] for d, members in groups.items() for r in members}
    features = [stored.get(d) for d in contents]
    joined = set()
    kept = []
    for p in known:
        x, y = content_of_id.get(p.a), content_of_id.get(p.b)
        if x is None or y is None or p.exact:
            kept.append(p)
            continue
        joined.add((min(x, y), max(x, y)))
        if same_page(features[x], features[y]):
            kept.append(p)
    out = []
    twins: list[tuple[int, int]] = []
    for match in find_local_matches(features, joined):
        first, second = groups[contents[match.a]], groups[contents[match.b]]
        part, whole = (first[0], second[0]) if match.part == match.a else (second[0], first[0])
        if match.kind == OVERLAID and not inner_pictures_agree(
            rows, part, whole, features[match.a]
        ):
            continue
        if options.guards and not colours_agree(rows, part, whole, match):
            continue
        distance = _distance(rows, first[0], second[0])
        again = (min(match.a, match.b), max(match.a, match.b)) in joined
        for x in first:
            for y in second:
                if not again:
                    out.append(_pair(ids[x], ids[y], match, match.part == match.a, distance))
                if match.kind == OVERLAID:
                    twins.append((ids[x], ids[y]))
    excluded = options.exclude_pairs
    found = [p for p in [*kept, *out] if (p.a, p.b) not in excluded]
    more = [p for p in twin_pairs(found, twins) if (p.a, p.b) not in excluded]
    return sorted([*found, *more], key=lambda p: (p.a, p.b))


def twin_pairs(pairs: Sequence[Pair], twins: Sequence[tuple[int, int]]) -> list[Pair]:
    """The pairs ``pairs`` lack that give each two files of ``twins`` (a copy with overlays
    and its picture: one frame, upright, joined by an "identity" pair) each other's partners
    in the cluster ``pairs`` make (``cluster.build_clusters``): a crop, a tilt or a sepia copy
    of the picture is one of its stickered copy too, and complete linkage would otherwise keep
    the stickered copy out of its picture's cluster, whose crops and tilts no stage pairs
    with it directly. Only partners in the same cluster: a twin's other candidate pairs
    (look-alikes that complete linkage left out) are not carried over."""
    if not twins:
        return []
    from .cluster import build_clusters  # the complete linkage, as the report runs it

    cluster_of = {m: k for k, c in enumerate(build_clusters(list(pairs))) for m in c.members}
    partners: dict[int, list[Pair]] = {}
    for p in pairs:
        partners.setdefault(p.a, []).append(p)
        partners.setdefault(p.b, []).append(p)
    have = {(p.a, p.b): p for p in pairs}
    out = []
    for x, y in twins:
        between = have.get((min(x, y), max(x, y)))
        if between is None or between.transform != "identity":  # mirrored: not one frame
            continue
        for source, target in ((x, y), (y, x)):
            home = cluster_of.get(source)
            for p in partners.get(source, ()):
                other = p.b if p.a == source else p.a
                if home is None or cluster_of.get(other) != home:
                    continue
                moved = _moved(p, source, target)
                if moved is not None and (moved.a, moved.b) not in have:
                    have[moved.a, moved.b] = moved
                    out.append(moved)
    return out


def _moved(p: Pair, source: int, target: int) -> Pair | None:
    """``p`` with ``source`` replaced by ``target`` (None: the pair of the two twins)."""
    other = p.b if p.a == source else p.a
    if other == target or p.exact:
        return None
    if (source < other) == (target < other):
        return replace(p, a=min(target, other), b=max(target, other))
    return replace(p, a=min(target, other), b=max(target, other), transform=_inverse(p.transform))


def _inverse(transform: str) -> str:
    """The transform of the pair read the other way round."""
    if transform in (CROP, UNCROP):
        return UNCROP if transform == CROP else CROP
    return DIHEDRAL_NAMES[INVERSE[DIHEDRAL_NAMES.index(transform)]]


def inner_pictures_agree(rows: Rows, x: int, y: int, shape: LocalFeatures | None) -> bool:
    """For a copy with overlays (rows ``x`` and ``y``): whether the hash stage's inner-picture
    veto (``match.inner_veto``) lets the pair be, and, when neither shows an inner picture,
    that ``shape`` (either one's features) is no phone screen's: a screenshot whose picture
    was not found (a dark picture on a dark page) agrees with one of another picture in the
    same app over its chrome, as a copy does under stickers."""
    shown = rows.inner
    has = shown is not None and bool(shown.has[x] or shown.has[y])
    if not has:
        return shape is None or shape.height < TALL * shape.width
    found = Candidates(
        np.array([x]), np.array([y]), np.array([_distance(rows, x, y)]), np.zeros(1, np.int64)
    )
    return bool(inner_veto(rows, found)[0])


def colours_agree(rows: Rows, part: int, whole: int, match: LocalMatch) -> bool:
    """The hash stage's colour guard (``match.colour_guard``) on the part's colour signature
    and its region's in the whole (``match.resample_to_window``): ORB sees grey levels only,
    so the light and the dark, or the blue and the orange, version of one drawing match as
    well as copies do. A tilted part's cells do not line up with the region's: its mean
    colour is compared instead."""
    inside = resample_to_window(rows.colour[whole], match.region).reshape(1, -1, 3)
    if match.kind == TILTED:
        own = rows.colour[part].reshape(1, -1, 3).astype(np.float64)
        inside, own = inside.mean(axis=1, keepdims=True), own.mean(axis=1, keepdims=True)
        return bool(colour_guard(compare_signatures(inside, own))[0])
    # A part turned by quarter turns: its grid turned back, whichever way gives the cells
    # that agree best (the sign of the angle depends on which picture is the part).
    grid = rows.colour[part].astype(np.float64)
    turns = round(match.angle / 90) % 4
    candidates = [np.rot90(grid, k).reshape(1, -1, 3) for k in {turns, (4 - turns) % 4}]
    compared = [compare_signatures(inside, c) for c in candidates]
    best = max(compared, key=lambda c: _first(c.luma_correlation))
    return bool(colour_guard(best)[0])


def _first(values: np.ndarray | None) -> float:
    return float(values[0]) if values is not None and np.isfinite(values[0]) else -1.0


def same_page(first: LocalFeatures | None, second: LocalFeatures | None) -> bool:
    """False for two text-like pictures that are different pages, True otherwise.

    Pages of one template (a letterhead, a receipt) are alike to every whole-frame hash: the
    same margins, rules and lines of grey text. Their keypoints tell them apart: a copy of a
    page (re-saved, resized, greyed) agrees through one transform all over the page, a
    different page in its letterhead and in scattered glyphs that happen to repeat at one
    place. Measured (``spread``, the share of keypoint cells holding an agreeing keypoint):
    other pages of make_heavy_corpus's template 0.42 at most, of the tests' 0.27; copies
    resized to half at JPEG quality 70, at quality 40 or greyed 0.85-0.97."""
    if first is None or second is None:
        return True
    if min(first.textlike, second.textlike) < TEXT_LIKE:
        return True
    found = verify(first, second)
    return found is not None and found.spread >= SAME_PAGE_SPREAD


def _pair(id_x: int, id_y: int, match: LocalMatch, x_is_part: bool, distance: int) -> Pair:
    """The pair of two files, smaller id first; CROP when the second is the part. A copy with
    overlays is one frame with its picture: a full-frame pair, as the hashes' are."""
    a, b, a_is_part = (id_x, id_y, x_is_part) if id_x < id_y else (id_y, id_x, not x_is_part)
    if match.kind == OVERLAID:
        return Pair(a, b, distance, False, "identity")
    return Pair(
        a, b, distance, False, UNCROP if a_is_part else CROP, kind=match.kind, region=match.region
    )


def _distance(rows: Rows, x: int, y: int) -> int:
    """The upright hashes' Hamming distance, for the report (local pairs have no other)."""
    xor = np.bitwise_xor(rows.hashes[x, 0], rows.hashes[y, 0])
    return int(sum(bin(int(word)).count("1") for word in xor))
