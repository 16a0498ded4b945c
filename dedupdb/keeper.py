"""Every cluster's keeper at once: the keeper rules (``keeper_rules``) over numpy columns.

A report over 100,000 images has tens of thousands of clusters, where ranking each one in
Python would be most of the report's time. ``rank_clusters`` computes the scores,
order and reasons of all clusters together: every measure, best-of-cluster and comparison is
one numpy operation over all members (clusters are contiguous segments of one array), and
only the words of the reasons are assembled per cluster. The floating-point operations follow
the rules' definition in its order, so the scores are equal to the last bit of the plain
one-cluster version the tests compare against (tests/keeper_oracle.py, with hypothesis).

The tiers above the score (conversions, ``keeper_rules.conversion``: a few candidate pairs
tested in Python; the camera's metadata) are numpy too; a cluster where a rule, a conversion
or the metadata outranked the score gets the rules' own words (``keeper_rules.explain``), the
others have theirs assembled here.

The two inputs the ranking takes from the matching stage are batched here as well:
``colour_deviations`` (each member's colours against its cluster's consensus) and
``keeper_distances`` (Hamming bits from the keeper, rotation-aware).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .columns import take_rows
from .keeper_rules import (
    ASPECT_TOLERANCE,
    COMPRESSION_TOLERANCE,
    EDIT_FREE,
    EDIT_SPAN,
    EXIF_TAGS_ANY,
    EXIF_TAGS_FULL,
    GOOD_JPEG_QUALITY,
    METADATA_MIN_BPP,
    METADATA_MIN_RESOLUTION,
    RAW_EXTENSIONS,
    RICHER_EXIF_TAGS,
    SCORE_EPSILON,
    SHARPNESS_EXCESS,
    SHARPNESS_TOLERANCE,
    WEIGHTS,
    Candidate,
    Ranked,
    Rules,
    compression_text,
    conversion,
    explain,
    folder_hint,
    format_name,
    format_rank,
    looks_like_copy,
    metadata_tags,
    no_borders_text,
    rule_value,
    sharpness_text,
    tie_break_text,
)
from .match import aligned
from .search import INVERSE
from .signals import jpeg_quality

_INVERSE = np.asarray(INVERSE)  # the index of each dihedral transform's inverse
# The longest raw file's extension (the dot included).
_RAW_LONGEST = max(len(e) for e in RAW_EXTENSIONS)


@dataclass
class Table:
    """What the ranking knows about each image (the fields of ``keeper_rules.Candidate``), as
    columns: one entry per row. Clusters name their members by row number."""

    image_id: np.ndarray  # int64
    path: list[str]
    size: np.ndarray  # int64
    mtime_ns: np.ndarray  # int64
    width: np.ndarray  # int64
    height: np.ndarray  # int64
    format: list[str]
    lossless: np.ndarray  # bool
    sharpness: np.ndarray  # float64
    exif_tags: np.ndarray  # int64
    taken_at: list[str | None]
    camera: list[str | None]
    content_hash: list[bytes | None]
    colour_deviation: np.ndarray  # float64
    # The picture inside added borders (the file's width and height when it has none).
    content_width: np.ndarray  # int64
    content_height: np.ndarray  # int64
    # What tells a conversion (keeper_rules.conversion); None where not stored.
    jpeg_quant: list[bytes | None] | None = None
    dct_sample: list[bytes | None] | None = None

    def __len__(self) -> int:
        return len(self.path)

    @classmethod
    def from_candidates(cls, candidates: Sequence[Candidate]) -> Table:
        def ints(name: str) -> np.ndarray:
            return np.array([getattr(c, name) for c in candidates], dtype=np.int64)

        return cls(
            image_id=ints("image_id"),
            path=[c.path for c in candidates],
            size=ints("size"),
            mtime_ns=ints("mtime_ns"),
            width=ints("width"),
            height=ints("height"),
            format=[c.format for c in candidates],
            lossless=np.array([c.lossless for c in candidates], dtype=bool),
            sharpness=np.array([c.sharpness for c in candidates], dtype=np.float64),
            exif_tags=ints("exif_tags"),
            taken_at=[c.taken_at for c in candidates],
            camera=[c.camera for c in candidates],
            content_hash=[c.content_hash for c in candidates],
            colour_deviation=np.array([c.colour_deviation for c in candidates], np.float64),
            content_width=ints("picture_width"),
            content_height=ints("picture_height"),
            jpeg_quant=[c.jpeg_quant for c in candidates],
            dct_sample=[c.dct_sample for c in candidates],
        )

    def take(self, rows: np.ndarray) -> Table:
        """The table of these rows, in this order."""
        return take_rows(self, rows)

    def candidate(self, row: int) -> Candidate:
        return Candidate(
            image_id=int(self.image_id[row]),
            path=self.path[row],
            size=int(self.size[row]),
            mtime_ns=int(self.mtime_ns[row]),
            width=int(self.width[row]),
            height=int(self.height[row]),
            format=self.format[row],
            lossless=bool(self.lossless[row]),
            sharpness=float(self.sharpness[row]),
            exif_tags=int(self.exif_tags[row]),
            taken_at=self.taken_at[row],
            camera=self.camera[row],
            content_hash=self.content_hash[row],
            colour_deviation=float(self.colour_deviation[row]),
            content_width=int(self.content_width[row]),
            content_height=int(self.content_height[row]),
            jpeg_quant=None if self.jpeg_quant is None else self.jpeg_quant[row],
            dct_sample=None if self.dct_sample is None else self.dct_sample[row],
        )


@dataclass
class Segments:
    """Clusters as contiguous runs of one flat array of rows."""

    rows: np.ndarray  # int64 row numbers, cluster after cluster
    starts: np.ndarray  # (clusters + 1,) int64 offsets into rows

    @classmethod
    def of(cls, clusters: Sequence[Sequence[int]]) -> Segments:
        sizes = np.fromiter((len(c) for c in clusters), dtype=np.int64, count=len(clusters))
        if len(sizes) and sizes.min() < 1:
            raise ValueError("a cluster has at least one member")
        rows = np.fromiter((r for c in clusters for r in c), dtype=np.int64, count=int(sizes.sum()))
        return cls(rows, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.starts) - 1

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def cluster(self) -> np.ndarray:
        """The cluster number of each position."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.sizes)


@dataclass
class Rankings:
    """Each cluster's members best first (``order[starts[i]]`` is cluster ``i``'s keeper),
    with the score, its parts and the keeper's reasons as the rules give them."""

    order: Segments  # rows, each cluster best first
    score: list[float]  # per position of ``order.rows``
    parts: dict[str, np.ndarray]  # per position, unrounded (the rules' score parts)
    reasons: list[list[str]]  # per cluster


def _first(cluster: np.ndarray, starts: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Per cluster, the position whose keys (most significant first) are smallest; ties go
    to the earlier position, as Python's ``min`` does."""
    positions = np.arange(len(cluster), dtype=np.int64)
    order = np.lexsort((positions, *reversed(keys), cluster))
    found: np.ndarray = order[starts[:-1]]
    return found


def _segment_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.maximum.reduceat(values, starts[:-1])
    return result


def _codecs(
    table: Table, rows: np.ndarray, lossless: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per position: a number per codec (``keeper_rules.codec``), and a JPEG's estimated quality
    (``keeper_rules.quality_of``; 0 where none); and the number of TIFF (-1: none). Formats and
    tables repeat: each is looked at once."""
    codes: dict[str, int] = {}
    by_format: dict[str, int] = {}
    code = np.empty(len(rows), dtype=np.int64)
    picks = rows.tolist()
    for i, row in enumerate(picks):
        fmt = table.format[row]
        number = by_format.get(fmt)
        if number is None:
            number = by_format[fmt] = codes.setdefault(codec_of(fmt), len(codes))
        code[i] = number
    quality = np.zeros(len(rows), dtype=np.float64)
    tiff = codes.get("TIFF", -1)
    if table.jpeg_quant is None or "JPEG" not in codes:
        return code, quality, tiff
    cache: dict[bytes, int] = {}
    for i in np.flatnonzero((code == codes["JPEG"]) & ~lossless).tolist():
        steps = table.jpeg_quant[picks[i]]
        if steps is not None:
            found = cache.get(steps)
            if found is None:
                found = cache[steps] = jpeg_quality(steps)
            quality[i] = found
    return code, quality, tiff


def codec_of(fmt: str) -> str:
    """``keeper_rules.codec`` of a format name."""
    upper = fmt.upper()
    return "JPEG" if upper == "MPO" else upper


def _group_max(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per position, the largest value of its group (numbers 0..groups-1)."""
    order = np.lexsort((values, group))
    last = np.flatnonzero(np.append(group[order][1:] != group[order][:-1], True))
    most = values[order][last]  # groups in ascending number, each its largest value
    result: np.ndarray = most[group]
    return result


def _capped(value: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Value over COMPRESSION_TOLERANCE of best, at most 1."""
    result: np.ndarray = np.minimum(1.0, _ratio(value, COMPRESSION_TOLERANCE * best))
    return result


def _sharpness_parts(value: np.ndarray, most: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The sharpness part of each position (``keeper_rules.SHARPNESS_EXCESS``)."""
    excess = (members >= 3) & (most > 0) & (value > SHARPNESS_EXCESS * most)
    safe = np.where(excess, value, 1.0)
    capped = np.minimum(1.0, _ratio(value, SHARPNESS_TOLERANCE * most))
    result: np.ndarray = np.where(excess, SHARPNESS_EXCESS * most / safe, capped)
    return result


def _lower_median(values: np.ndarray, cluster: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per cluster, the lower median of the values (``keeper_rules.lower_median_sharpness``)."""
    ordered = values[np.lexsort((values, cluster))]
    result: np.ndarray = ordered[starts[:-1] + (np.diff(starts) - 1) // 2]
    return result


def _ratio(value: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Value / best, 1.0 where best is not positive (inf past the floats' range, as Python's
    division gives: the parts cap it at 1)."""
    safe = np.where(best > 0, best, 1)
    with np.errstate(over="ignore"):
        result: np.ndarray = np.where(best > 0, value / safe, 1.0)
    return result


def _formats(paths: list[str], formats: list[str], lossless: list[bool]) -> tuple[
    np.ndarray, np.ndarray
]:  # fmt: skip
    """``format_rank`` and ``is_raw`` of each member (cached by raw name, format and
    lossless)."""
    cache: dict[tuple[bool, str, bool], tuple[float, bool]] = {}
    ranks, raws = [], []
    for path, fmt, loss in zip(paths, formats, lossless, strict=True):
        key = (_raw_name(path), fmt, loss)
        value = cache.get(key)
        if value is None:
            probe = Candidate(0, path, 0, 0, 0, 0, fmt, loss)
            value = cache[key] = (format_rank(probe), probe.is_raw)
        ranks.append(value[0])
        raws.append(value[1])
    return np.array(ranks, dtype=np.float64), np.array(raws, dtype=bool)


def _raw_name(path: str) -> bool:
    """Whether the path's extension is a raw file's (as ``Candidate.is_raw`` tells). Only a
    path whose last characters spell one can: the others (nearly all) skip ``splitext``."""
    tail = path[-_RAW_LONGEST:].lower()
    return tail[tail.rfind(".") :] in RAW_EXTENSIONS and (
        os.path.splitext(path)[1].lower() in RAW_EXTENSIONS
    )


def rounded(values: np.ndarray, digits: int) -> list[float]:
    """``[round(v, digits) for v in values]``, vectorised, with the same results.

    Python rounds the exact binary value to the nearest multiple of ``10**-digits`` (half to
    even) and returns the double nearest that decimal. ``rint(v * 10**digits) / 10**digits``
    does the same (the division of an integer by an exact power of ten is correctly rounded),
    except where the product's rounding error could cross a half: those few values, and any
    huge or non-finite ones, go through Python's ``round``.
    """
    scale = 10.0**digits
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: Python's round below
        scaled = values * scale
        result: list[float] = (np.rint(scaled) / scale).tolist()
        doubtful = ~(np.abs(scaled) < 2.0**52) | (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    for i in np.flatnonzero(doubtful).tolist():
        result[i] = round(float(values[i]), digits)
    return result


def _tied(cluster: np.ndarray, rule: np.ndarray, quantum: np.ndarray) -> np.ndarray:
    """The positions that share their cluster, rule and score with another position."""
    if not len(cluster):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((quantum, rule, cluster))
    c, r, q = cluster[order], rule[order], quantum[order]
    same = (c[1:] == c[:-1]) & (r[1:] == r[:-1]) & (q[1:] == q[:-1])
    mark = np.zeros(len(order), dtype=bool)
    mark[1:] |= same
    mark[:-1] |= same
    result: np.ndarray = np.sort(order[mark])
    return result


def _dense_rank(values: list[str]) -> np.ndarray:
    """Each value's place among the distinct values, in Python's string order."""
    ranks = np.empty(len(values), dtype=np.int64)
    place, previous = -1, None
    for i in sorted(range(len(values)), key=values.__getitem__):
        if place < 0 or values[i] != previous:
            place, previous = place + 1, values[i]
        ranks[i] = place
    return ranks


def rank_clusters(
    table: Table, clusters: Segments | Sequence[Sequence[int]], rules: Rules
) -> Rankings:
    """The keeper rules' ranking of every cluster (row numbers into ``table``) at once."""
    seg = clusters if isinstance(clusters, Segments) else Segments.of(clusters)
    if not len(seg):
        return Rankings(order=seg, score=[], parts={name: np.zeros(0) for name in WEIGHTS},
                        reasons=[])  # fmt: skip
    starts, rows = seg.starts, seg.rows
    cluster = seg.cluster
    path = [table.path[r] for r in rows.tolist()]
    image_id = table.image_id[rows]
    # Sizes are the pictures' (inside added borders), as keeper_rules.Candidate's.
    width, height = table.content_width[rows], table.content_height[rows]
    bordered = (width != table.width[rows]) | (height != table.height[rows])
    size, lossless = table.size[rows], table.lossless[rows]
    sharp = table.sharpness[rows]
    exif_tags = table.exif_tags[rows]
    has_camera = np.array([table.camera[r] is not None for r in rows.tolist()], dtype=bool)
    has_date = np.array([table.taken_at[r] is not None for r in rows.tolist()], dtype=bool)
    deviation = table.colour_deviation[rows]

    # The measures of keeper_rules.Candidate and the best of each cluster.
    pixels = width * height
    bpp = np.where(pixels > 0, size * 8 / np.where(pixels > 0, pixels, 1), 0.0)
    short, long = np.minimum(width, height), np.maximum(width, height)
    aspect = np.where(short > 0, long / np.where(short > 0, short, 1), 0.0)
    lossy = ~lossless
    largest = _first(cluster, starts, -pixels, image_id)
    best_pixels = pixels[largest]
    # the most bits per pixel: per cluster and codec
    group_codec, quality, tiff_code = _codecs(table, rows, lossless)
    group = np.unique(cluster * (int(group_codec.max()) + 1) + group_codec, return_inverse=True)[1]
    best_bpp = _group_max(np.where(lossy, bpp, 0.0), group)
    # compression: a JPEG's quality, another lossy file's bits per pixel
    compressed = np.where(
        lossless,
        1.0,
        np.where(quality > 0, np.minimum(1.0, quality / GOOD_JPEG_QUALITY), _capped(bpp, best_bpp)),
    )
    best_sharp = _lower_median(sharp, cluster, starts)

    fmt_rank, is_raw = _formats(path, [table.format[r] for r in rows.tolist()], lossless.tolist())
    # keeper_rules.framing_of: the largest member without added borders, if any
    big_aspect = aspect[_first(cluster, starts, bordered, -pixels, image_id)][cluster]
    framing = (aspect == 0) | (big_aspect == 0)
    framing |= np.abs(aspect - big_aspect) / np.where(big_aspect == 0, 1.0, big_aspect) <= (
        ASPECT_TOLERANCE
    )
    fidelity = np.minimum(1.0, np.maximum(0.0, 1.0 - (deviation - EDIT_FREE) / EDIT_SPAN))
    counted = np.where(group_codec == tiff_code, 0, exif_tags)  # keeper_rules.metadata_tags
    tags = np.minimum(np.maximum(counted - EXIF_TAGS_ANY, 0), EXIF_TAGS_FULL) / EXIF_TAGS_FULL
    parts = {
        "resolution": _ratio(pixels, best_pixels[cluster]),
        "format": fmt_rank,
        "size": compressed,
        "bpp": compressed,
        "sharpness": _sharpness_parts(sharp, best_sharp[cluster], seg.sizes[cluster]),
        "exif": 0.4 * has_camera + 0.3 * has_date + 0.3 * tags,
        "unedited": (framing & ~bordered).astype(np.float64) * fidelity,
    }
    total = np.zeros(len(rows), dtype=np.float64)
    for name, weight in WEIGHTS.items():  # the rules' order: equal to the last bit
        total = total + weight * parts[name]
    score_values = np.asarray(rounded(total, 6))
    score = score_values.tolist()

    # keeper_rules.sort_key, as lexsort keys. Past the rule, conversions, metadata and the score,
    # the keys only order members that tie on all: they are computed for those alone.
    if rules.prefer or rules.avoid:
        rule = np.array([rule_value(p, rules) for p in path], dtype=np.int64)
    else:
        rule = np.zeros(len(rows), dtype=np.int64)
    source = _conversions(table, rows, cluster, width, height, lossless, bordered, is_raw)
    converted = source >= 0
    protected = has_camera | has_date | is_raw
    protected &= ~converted & (pixels >= METADATA_MIN_RESOLUTION * best_pixels[cluster])
    protected &= parts["unedited"] >= 0.5
    peers = lossy & (pixels >= METADATA_MIN_RESOLUTION * best_pixels[cluster])
    peer_bpp = _group_max(np.where(peers, bpp, 0.0), group)
    protected &= lossless | (bpp >= METADATA_MIN_BPP * peer_bpp)
    # -rule, converted, not protected: one ascending key
    tier = (1 - rule) * 4 + converted * 2 + ~protected
    quantum = np.rint(score_values / SCORE_EPSILON).astype(np.int64)  # Python's round()
    tied = _tied(cluster, tier, quantum)
    tied_list = tied.tolist()
    hint = np.zeros(len(rows), dtype=np.int64)
    copy_name = np.zeros(len(rows), dtype=bool)
    length = np.zeros(len(rows), dtype=np.int64)
    path_rank = np.zeros(len(rows), dtype=np.int64)
    if len(tied):
        tied_paths = [path[i] for i in tied_list]
        hint[tied] = [folder_hint(p)[0] for p in tied_paths]
        copy_name[tied] = [looks_like_copy(p) for p in tied_paths]
        length[tied] = [len(p) for p in tied_paths]
        path_rank[tied] = _dense_rank(tied_paths)
    mtime = table.mtime_ns[rows]
    order = np.lexsort(
        (image_id, path_rank, length, -hint, mtime, copy_name, -quantum, tier, cluster)
    )

    # Everything from here on is per position of the ranked order.
    ranked = Segments(rows[order], starts)
    score = [score[i] for i in order.tolist()]
    parts = {name: values[order] for name, values in parts.items()}
    reasons = _explain(
        _Ranked(
            seg=ranked,
            cluster=cluster,
            rule=rule[order],
            path=[path[i] for i in order.tolist()],
            image_id=image_id[order],
            width=width[order],
            height=height[order],
            pixels=pixels[order],
            size=size[order],
            lossless=lossless[order],
            bpp=bpp[order],
            sharp=sharp[order],
            exif_tags=exif_tags[order],
            aspect=aspect[order],
            framing=framing[order],
            bordered=bordered[order],
            fidelity=fidelity[order],
            fmt_rank=fmt_rank[order],
            is_raw=is_raw[order],
            mtime=mtime[order],
            score=score,
            parts=parts,
            source=_reordered(source, order),
            codec=group_codec[order],
            sharp_ref=best_sharp[cluster][order],
            protected=protected[order],
        ),
        table,
        rules,
    )
    return Rankings(order=ranked, score=score, parts=parts, reasons=reasons)


def _conversions(
    table: Table,
    rows: np.ndarray,
    cluster: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    lossless: np.ndarray,
    bordered: np.ndarray,
    is_raw: np.ndarray,
) -> np.ndarray:
    """Per position: the position of the member it is a conversion of (``keeper_rules.conversion``;
    the first such in the cluster), or -1."""
    source = np.full(len(rows), -1, dtype=np.int64)
    for position, others in _size_pairs(cluster, width, height, lossless, ~bordered & ~is_raw):
        lossless_member = table.candidate(int(rows[position]))
        for other in others:
            if conversion(lossless_member, table.candidate(int(rows[other]))) is not None:
                source[position] = other
                break
    return source


def _size_pairs(
    cluster: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    lossless: np.ndarray,
    able: np.ndarray,
) -> list[tuple[int, list[int]]]:
    """The positions that can be conversions (lossless, ``able``, with a lossy ``able`` member
    of their size in their cluster: a few in a library), each with those lossy positions in
    order. One numpy pass; Python only for the pairs found."""
    ll, lo = np.flatnonzero(able & lossless), np.flatnonzero(able & ~lossless)
    if not len(ll) or not len(lo):
        return []
    both = np.concatenate([ll, lo])
    # one integer per (cluster, width, height): sides are under 2**20 (Pillow's limits)
    keys = (cluster[both] << 40) | (np.minimum(width[both], 2**20 - 1) << 20)
    keys |= np.minimum(height[both], 2**20 - 1)
    code = np.unique(keys, return_inverse=True)[1].reshape(-1)
    ll_code, lo_code = code[: len(ll)], code[len(ll) :]
    paired = np.isin(lo_code, ll_code)
    lossy_of: dict[int, list[int]] = {}
    for other, key in zip(lo[paired].tolist(), lo_code[paired].tolist(), strict=True):
        lossy_of.setdefault(key, []).append(other)  # in position order: lo is sorted
    return [
        (position, lossy_of[key])
        for position, key in zip(ll.tolist(), ll_code.tolist(), strict=True)
        if key in lossy_of
    ]


def conversion_candidates(table: Table, clusters: Segments) -> np.ndarray:
    """The rows (of ``table``) of lossless members that can be conversions of another member
    of their cluster: the only rows whose DCT sample the ranking reads."""
    rows = clusters.rows
    width, height = table.content_width[rows], table.content_height[rows]
    bordered = (width != table.width[rows]) | (height != table.height[rows])
    pairs = _size_pairs(clusters.cluster, width, height, table.lossless[rows], ~bordered)
    return np.unique(rows[np.array([p for p, _ in pairs], dtype=np.int64)])


@dataclass
class _Ranked:
    """The columns ``_explain`` reads, per position of the ranked order."""

    seg: Segments
    cluster: np.ndarray
    rule: np.ndarray
    path: list[str]
    image_id: np.ndarray
    width: np.ndarray
    height: np.ndarray
    pixels: np.ndarray
    size: np.ndarray
    lossless: np.ndarray
    bpp: np.ndarray
    sharp: np.ndarray
    exif_tags: np.ndarray
    aspect: np.ndarray
    framing: np.ndarray
    bordered: np.ndarray
    fidelity: np.ndarray
    fmt_rank: np.ndarray
    is_raw: np.ndarray
    mtime: np.ndarray
    score: list[float]
    parts: dict[str, np.ndarray]
    source: np.ndarray  # the position each is a conversion of, or -1
    codec: np.ndarray  # a number per codec (keeper_rules.codec)
    sharp_ref: np.ndarray  # the cluster's lower median sharpness
    protected: np.ndarray


def _reordered(source: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Positions (-1: none) per position, both in the ranked order."""
    place = np.empty(len(order), dtype=np.int64)
    place[order] = np.arange(len(order), dtype=np.int64)
    moved = source[order]
    result: np.ndarray = np.where(moved >= 0, place[np.maximum(moved, 0)], -1)
    return result


def _explain(r: _Ranked, table: Table, rules: Rules) -> list[list[str]]:
    """``keeper_rules.explain`` of every cluster: the comparisons in numpy, the words per
    cluster."""
    starts, cluster = r.seg.starts, r.cluster
    n = len(r.path)
    keeper = starts[:-1]
    k_of = keeper[cluster]  # each position's keeper
    other = np.ones(n, dtype=bool)
    other[keeper] = False
    inf = np.inf

    def first(mask: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per cluster: the first position among ``mask`` with the smallest keys, and
        whether there is one."""
        found = _first(cluster, starts, ~mask, *keys)
        return found, mask[found]

    def other_min(values: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.minimum.reduceat(np.where(other, values, inf), keeper)
        return result

    def gain(part: str) -> np.ndarray:
        values = r.parts[part]
        result: np.ndarray = (values[keeper] - other_min(values)) * WEIGHTS[part]
        return result

    kpix = r.pixels[keeper]
    # resolution: the keeper is the largest and some other is smaller
    smaller = other & (r.pixels < kpix[cluster])
    versus, any_smaller = first(smaller, -r.pixels, r.image_id)
    most_other = np.maximum.reduceat(np.where(other, r.pixels, -1), keeper)
    res_ok = any_smaller & (kpix >= most_other) & (gain("resolution") > SCORE_EPSILON)
    # format: the first other of the lowest format part ranks below the keeper
    worse, _ = first(other, r.parts["format"])
    fmt_ok = (r.fmt_rank[worse] < r.fmt_rank[keeper]) & (gain("format") > SCORE_EPSILON)
    # bits per pixel: a lossy other of the keeper's size (1 %) is more compressed
    same_size = other & ~r.lossless & (r.codec == r.codec[k_of])
    same_size &= np.abs(r.pixels - r.pixels[k_of]) <= 0.01 * r.pixels[k_of]
    lower, any_same = first(same_size, r.parts["bpp"])
    bpp_ok = ~r.lossless[keeper] & any_same & (r.parts["bpp"][lower] < r.parts["bpp"][keeper])
    bpp_ok &= gain("bpp") > SCORE_EPSILON
    blurrier, _ = first(other, r.parts["sharpness"])
    sharp_ok = gain("sharpness") > SCORE_EPSILON
    poorer, _ = first(other, r.parts["exif"])
    exif_ok = (r.parts["exif"][keeper] > r.parts["exif"][poorer]) & (gain("exif") > SCORE_EPSILON)
    cropped, any_cropped = first(other & ~r.framing)
    low_fidelity = np.maximum.reduceat(other & (r.fidelity < 0.5), keeper)
    uncropped = r.framing[keeper] & any_cropped
    framed, any_framed = first(other & r.bordered)
    unframed = ~uncropped & ~r.bordered[keeper] & any_framed
    colours = ~uncropped & ~unframed & (r.fidelity[keeper] == 1.0) & low_fidelity
    edit_ok = (uncropped | unframed | colours) & (gain("unedited") > SCORE_EPSILON)
    gains = {name: gain(name).tolist() for name in ("resolution", "format", "bpp", "sharpness",
                                                    "exif", "unedited")}  # fmt: skip
    sizes = r.seg.sizes.tolist()
    # Clusters where a rule, a conversion or the camera's metadata outranked the score: the
    # reference's words (a few clusters).
    scores = np.asarray(r.score, dtype=np.float64)
    ruled = np.zeros(len(keeper), dtype=bool)
    if len(keeper):
        ruled = np.maximum.reduceat((r.rule != 0) | (r.source >= 0), keeper)
        higher = np.maximum.reduceat(scores, keeper) > scores[keeper] + SCORE_EPSILON
        ruled |= r.protected[keeper] & higher
    ruled = ruled.tolist()
    flags = list(zip(res_ok.tolist(), fmt_ok.tolist(), bpp_ok.tolist(), sharp_ok.tolist(),
                     exif_ok.tolist(), edit_ok.tolist(), strict=True))  # fmt: skip
    keeper_list = keeper.tolist()
    chosen = (versus, worse, lower, blurrier, poorer, cropped, uncropped, framed, unframed)
    picks = list(zip(*(values.tolist() for values in chosen), strict=True))

    out: list[list[str]] = []
    for c, k in enumerate(keeper_list):
        if sizes[c] == 1:
            out.append(["only copy"])
            continue
        if ruled[c]:  # the reference, with its words for rules, conversions, metadata
            out.append(explain(_reference(r, table, k, k + sizes[c]), rules))
            continue
        res, fmt, bpp, sharp, exif, edit = flags[c]
        if not (res or fmt or bpp or sharp or exif or edit):
            out.append([_tie_break(r, table, k, k + sizes[c])])
            continue
        vs, wf, lo, bl, po, cr, unc, fr, unf = picks[c]
        advantages: list[tuple[float, str]] = []
        if res:
            advantages.append((gains["resolution"][c], f"largest: {_dims(r, k)} vs {_dims(r, vs)}"))
        if fmt:
            original = "original format" if r.is_raw[k] else "better format"
            advantages.append(
                (
                    gains["format"][c],
                    f"{original}: {_format_name(r, table, k)} vs {_format_name(r, table, wf)}",
                )
            )
        if bpp:
            text = compression_text(table.candidate(_row(r, k)), table.candidate(_row(r, lo)))
            advantages.append((gains["bpp"][c], text))
        if sharp:
            text = sharpness_text(
                table.candidate(_row(r, k)), table.candidate(_row(r, bl)), float(r.sharp_ref[k])
            )
            advantages.append((gains["sharpness"][c], text))
        if exif:
            exif_text = _exif_text(r, table, k, po)
            if exif_text is not None:
                advantages.append((gains["exif"][c], exif_text))
        if edit:
            if unc:
                ka, ca = float(r.aspect[k]), float(r.aspect[cr])
                text = f"uncropped: {ka:.2f}:1 vs {ca:.2f}:1 framing"
            elif unf:
                text = no_borders_text(table.candidate(_row(r, fr)))
            else:
                text = ORIGINAL_COLOURS
            advantages.append((gains["unedited"][c], text))
        if not advantages:
            out.append([_tie_break(r, table, k, k + sizes[c])])
            continue
        advantages.sort(key=lambda item: -item[0])
        out.append([text for _, text in advantages])
    return out


# The keeper's reason when another copy's colours differ from the cluster's (the report names
# a crop instead when every such copy is a cropped copy: ``report.name_the_edit``).
ORIGINAL_COLOURS = "original colours (another copy is brightened, grayscale or retouched)"
UNCROPPED = "uncropped (another copy is a cropped copy)"


def _row(r: _Ranked, position: int) -> int:
    return int(r.seg.rows[position])


def _dims(r: _Ranked, position: int) -> str:
    inside = " inside borders" if r.bordered[position] else ""
    return f"{int(r.width[position])}x{int(r.height[position])}{inside}"


def _format_name(r: _Ranked, table: Table, position: int) -> str:
    return format_name(table.candidate(_row(r, position)))


def _exif_text(r: _Ranked, table: Table, k: int, poorer: int) -> str | None:
    kc, pc = table.camera[_row(r, k)], table.camera[_row(r, poorer)]
    kt, pt = table.taken_at[_row(r, k)], table.taken_at[_row(r, poorer)]
    if kc and not pc:
        taken = f", taken {kt[:10]}" if kt else ""
        return f"original EXIF ({kc}{taken})"
    if kt and not pt:
        return f"has the date taken ({kt[:10]})"
    kx = metadata_tags(table.candidate(_row(r, k)))
    px = metadata_tags(table.candidate(_row(r, poorer)))
    if kx - px >= RICHER_EXIF_TAGS:
        return f"richer EXIF: {kx} vs {px} tags"
    return None


def _tie_break(r: _Ranked, table: Table, k: int, end: int) -> str:
    """The tie-break reason (``keeper_rules.tie_break_text``) for the cluster at positions
    k..end (keeper first)."""
    digest = table.content_hash[_row(r, k)]
    identical = digest is not None and all(
        table.content_hash[_row(r, o)] == digest for o in range(k + 1, end)
    )
    same = "identical copies" if identical else "same quality"
    rival = k + 1
    return tie_break_text(same, r.path[k], r.path[rival], bool(r.mtime[k] < r.mtime[rival]))


def _reference(r: _Ranked, table: Table, start: int, end: int) -> list[Ranked]:
    """The cluster at positions start..end as ``keeper_rules.Ranked`` items, for ``explain``."""
    members = {p: table.candidate(_row(r, p)) for p in range(start, end)}
    out = []
    for place, position in enumerate(range(start, end)):
        converted = None
        source = int(r.source[position])
        if source >= 0:
            how = conversion(members[position], members[source])
            converted = None if how is None else (members[source], how)
        out.append(
            Ranked(
                candidate=members[position],
                score=r.score[position],
                parts={name: float(values[position]) for name, values in r.parts.items()},
                rule=int(r.rule[position]),
                rank=place,
                converted=converted,
                protected=bool(r.protected[position]),
            )
        )
    return out


# ----------------------------------------------------------------------------- matching inputs


def _hamming_to_variants(hashes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Bits between each position's upright hash and the 8 variants of its target's hash:
    ``hashes`` is (n, 8, words) uint64, ``target`` (n,) positions; the result is (n, 8)."""
    diff = hashes[target] ^ hashes[:, :1, :]
    result: np.ndarray = np.bitwise_count(diff).sum(axis=2, dtype=np.int64)
    return result


def _content_codes(content: Sequence[bytes | None]) -> np.ndarray:
    codes: dict[bytes | None, int] = {}
    return np.array([codes.setdefault(c, len(codes)) for c in content], dtype=np.int64)


def colour_deviations(
    seg: Segments,
    colour: np.ndarray,
    hashes: np.ndarray,
    table: Table,
    rotations: bool,
) -> np.ndarray:
    """Each position's colour deviation within its cluster: the largest per-cell mean absolute
    difference from the cluster's per-cell median (0 in a cluster of identical copies), the
    colour signatures first turned to the largest member's orientation.

    ``colour`` (rows, 4, 4, 3) uint8 and ``hashes`` (rows, 8, words) uint64 are by row of
    ``table``, like ``seg.rows``.
    """
    rows, starts = seg.rows, seg.starts
    out = np.zeros(len(rows), dtype=np.float64)
    if not len(seg):
        return out
    cluster = seg.cluster
    pixels = table.width[rows] * table.height[rows]
    reference = _first(cluster, starts, -pixels, table.image_id[rows])[cluster]
    grids = colour[rows]
    if rotations:
        best = np.argmin(_hamming_to_variants(hashes[rows], reference), axis=1)
        variant = _INVERSE[best]
        variant[reference == np.arange(len(rows))] = 0
        grids = aligned(grids, variant)
    flat = grids.reshape(len(rows), -1).astype(np.float64)
    codes = _content_codes([table.content_hash[r] for r in rows.tolist()])
    varied = np.minimum.reduceat(codes, starts[:-1]) != np.maximum.reduceat(codes, starts[:-1])
    sizes = seg.sizes
    for size in np.unique(sizes[varied]).tolist():
        chosen = np.flatnonzero(varied & (sizes == size))
        at = starts[chosen][:, None] + np.arange(size)  # (clusters, size) positions
        values = flat[at]
        ordered = np.sort(values, axis=1)
        consensus = (ordered[:, (size - 1) // 2] + ordered[:, size // 2]) / 2
        diff = np.abs(values - consensus[:, None, :]).reshape(len(chosen), size, -1, 3)
        cells = (diff[..., 0] + diff[..., 1] + diff[..., 2]) / 3
        out[at] = cells.max(axis=2)
    return out


def keeper_distances(
    ranked: Segments, hashes: np.ndarray, table: Table, rotations: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per position of ``ranked`` (keeper first in each cluster): Hamming bits from the keeper
    and the dihedral transform of the keeper that gives them (the smallest distance, then
    the lowest transform; 0 and the identity for an exact copy of the keeper)."""
    rows, starts = ranked.rows, ranked.starts
    if not len(rows):
        nothing = np.zeros(0, dtype=np.int64)
        return nothing, nothing
    keeper = starts[:-1][ranked.cluster]
    bits = _hamming_to_variants(hashes[rows], keeper)
    variant = np.argmin(bits, axis=1) if rotations else np.zeros(len(rows), dtype=np.int64)
    distance = bits[np.arange(len(rows)), variant]
    codes = _content_codes([table.content_hash[r] for r in rows.tolist()])
    same = codes == codes[keeper]
    return np.where(same, 0, distance), np.where(same, 0, variant).astype(np.int64)
