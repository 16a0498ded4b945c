"""Every cluster's keeper at once: ``quality.rank`` over numpy columns.

``quality.rank`` ranks one cluster of ``Candidate`` objects in plain Python, which is the
readable definition of the keeper rules. A report over 100,000 images has tens of thousands of
clusters, where that costs about half a millisecond per cluster. ``rank_clusters`` computes the
same scores, order and reasons for all clusters together: every measure, best-of-cluster and
comparison is one numpy operation over all members (clusters are contiguous segments of one
array), and only the words of the reasons are assembled per cluster. The floating-point
operations are the reference's, in its order, so the scores are equal to the last bit; tests
check ``rank_clusters`` against ``quality.rank`` on random clusters (hypothesis).

The two inputs ``quality.rank`` takes from the matching stage are batched here as well:
``colour_deviations`` (each member's colours against its cluster's consensus, as
``quality.deviations``) and ``keeper_distances`` (Hamming bits from the keeper, rotation-aware).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .match import aligned
from .quality import (
    ASPECT_TOLERANCE,
    EDIT_FREE,
    EDIT_SPAN,
    EXIF_TAGS_FULL,
    RAW_EXTENSIONS,
    RICHER_EXIF_TAGS,
    SCORE_EPSILON,
    WEIGHTS,
    Candidate,
    Ranked,
    Rules,
    explain,
    format_name,
    format_rank,
    human_bytes,
    looks_like_copy,
    no_borders_text,
    rule_value,
)

_INVERSE = np.array([0, 3, 2, 1, 4, 5, 6, 7])  # the index of each dihedral transform's inverse
# The longest raw file's extension (the dot included).
_RAW_LONGEST = max(len(e) for e in RAW_EXTENSIONS)


@dataclass
class Table:
    """What the ranking knows about each image (the fields of ``quality.Candidate``), as
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
        )

    def take(self, rows: np.ndarray) -> Table:
        """The table of these rows, in this order."""
        picks = rows.tolist()
        return Table(
            image_id=self.image_id[rows],
            path=[self.path[r] for r in picks],
            size=self.size[rows],
            mtime_ns=self.mtime_ns[rows],
            width=self.width[rows],
            height=self.height[rows],
            format=[self.format[r] for r in picks],
            lossless=self.lossless[rows],
            sharpness=self.sharpness[rows],
            exif_tags=self.exif_tags[rows],
            taken_at=[self.taken_at[r] for r in picks],
            camera=[self.camera[r] for r in picks],
            content_hash=[self.content_hash[r] for r in picks],
            colour_deviation=self.colour_deviation[rows],
            content_width=self.content_width[rows],
            content_height=self.content_height[rows],
        )

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
    with the score, its parts and the keeper's reasons as ``quality.rank`` gives them."""

    order: Segments  # rows, each cluster best first
    score: list[float]  # per position of ``order.rows``
    parts: dict[str, np.ndarray]  # per position, unrounded (quality.score_parts)
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


def _ratio(value: np.ndarray, best: np.ndarray) -> np.ndarray:
    """``quality._ratio``: value / best, 1.0 where best is not positive."""
    safe = np.where(best > 0, best, 1)
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
    """``quality.rank`` of every cluster (row numbers into ``table``) at once."""
    seg = clusters if isinstance(clusters, Segments) else Segments.of(clusters)
    if not len(seg):
        return Rankings(order=seg, score=[], parts={name: np.zeros(0) for name in WEIGHTS},
                        reasons=[])  # fmt: skip
    starts, rows = seg.starts, seg.rows
    cluster = seg.cluster
    path = [table.path[r] for r in rows.tolist()]
    image_id = table.image_id[rows]
    # Sizes are the pictures' (inside added borders), as quality.Candidate's.
    width, height = table.content_width[rows], table.content_height[rows]
    bordered = (width != table.width[rows]) | (height != table.height[rows])
    size, lossless = table.size[rows], table.lossless[rows]
    sharp = table.sharpness[rows]
    exif_tags = table.exif_tags[rows]
    has_camera = np.array([table.camera[r] is not None for r in rows.tolist()], dtype=bool)
    has_date = np.array([table.taken_at[r] is not None for r in rows.tolist()], dtype=bool)
    deviation = table.colour_deviation[rows]

    # The measures of quality.Candidate and the best of each cluster (quality._Best).
    pixels = width * height
    bpp = np.where(pixels > 0, size * 8 / np.where(pixels > 0, pixels, 1), 0.0)
    short, long = np.minimum(width, height), np.maximum(width, height)
    aspect = np.where(short > 0, long / np.where(short > 0, short, 1), 0.0)
    lossy = ~lossless
    largest = _first(cluster, starts, -pixels, image_id)
    best_pixels = pixels[largest]
    best_size = _segment_max(np.where(lossy, size, 0), starts)
    best_bpp = _segment_max(np.where(lossy, bpp, 0.0), starts)
    best_sharp = _segment_max(sharp, starts)

    fmt_rank, is_raw = _formats(path, [table.format[r] for r in rows.tolist()], lossless.tolist())
    # quality._Best.framing: the largest member without added borders, if any
    big_aspect = aspect[_first(cluster, starts, bordered, -pixels, image_id)][cluster]
    framing = (aspect == 0) | (big_aspect == 0)
    framing |= np.abs(aspect - big_aspect) / np.where(big_aspect == 0, 1.0, big_aspect) <= (
        ASPECT_TOLERANCE
    )
    fidelity = np.minimum(1.0, np.maximum(0.0, 1.0 - (deviation - EDIT_FREE) / EDIT_SPAN))
    tags = np.minimum(exif_tags, EXIF_TAGS_FULL) / EXIF_TAGS_FULL
    parts = {
        "resolution": _ratio(pixels, best_pixels[cluster]),
        "format": fmt_rank,
        "size": np.where(lossless, 1.0, _ratio(size, best_size[cluster])),
        "bpp": np.where(lossless, 1.0, _ratio(bpp, best_bpp[cluster])),
        "sharpness": _ratio(sharp, best_sharp[cluster]),
        "exif": 0.4 * has_camera + 0.3 * has_date + 0.3 * tags,
        "unedited": (framing & ~bordered).astype(np.float64) * fidelity,
    }
    total = np.zeros(len(rows), dtype=np.float64)
    for name, weight in WEIGHTS.items():  # quality.total's order: equal to the last bit
        total = total + weight * parts[name]
    score_values = np.asarray(rounded(total, 6))
    score = score_values.tolist()

    # quality._sort_key, as lexsort keys. Past the rule and the score, the keys only order
    # members that tie on both: they are computed for those alone (0 for the others).
    if rules.prefer or rules.avoid:
        rule = np.array([rule_value(p, rules) for p in path], dtype=np.int64)
    else:
        rule = np.zeros(len(rows), dtype=np.int64)
    quantum = np.rint(score_values / SCORE_EPSILON).astype(np.int64)  # Python's round()
    tied = _tied(cluster, rule, quantum)
    tied_list = tied.tolist()
    copy_name = np.zeros(len(rows), dtype=bool)
    length = np.zeros(len(rows), dtype=np.int64)
    path_rank = np.zeros(len(rows), dtype=np.int64)
    if len(tied):
        tied_paths = [path[i] for i in tied_list]
        copy_name[tied] = [looks_like_copy(p) for p in tied_paths]
        length[tied] = [len(p) for p in tied_paths]
        path_rank[tied] = _dense_rank(tied_paths)
    mtime = table.mtime_ns[rows]
    order = np.lexsort((image_id, path_rank, mtime, length, copy_name, -quantum, -rule, cluster))

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
        ),
        table,
        rules,
    )
    return Rankings(order=ranked, score=score, parts=parts, reasons=reasons)


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


def _explain(r: _Ranked, table: Table, rules: Rules) -> list[list[str]]:
    """``quality.explain`` of every cluster: the comparisons in numpy, the words per cluster."""
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
    same_size = other & ~r.lossless
    same_size &= np.abs(r.pixels - r.pixels[k_of]) <= 0.01 * r.pixels[k_of]
    lower, any_same = first(same_size, r.bpp)
    bpp_ok = ~r.lossless[keeper] & any_same & (r.bpp[lower] < r.bpp[keeper] * 0.95)
    bpp_ok &= gain("bpp") > SCORE_EPSILON
    blurrier, _ = first(other, r.sharp)
    sharp_ok = (r.sharp[blurrier] < r.sharp[keeper] * 0.9) & (gain("sharpness") > SCORE_EPSILON)
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
    ruled = np.maximum.reduceat(r.rule != 0, keeper).tolist() if len(keeper) else []
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
        if ruled[c]:  # folder rules: the reference, with its rule reasons
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
            ks, ls = int(r.size[k]), int(r.size[lo])
            kb, lb = float(r.bpp[k]), float(r.bpp[lo])
            advantages.append(
                (
                    gains["bpp"][c],
                    f"less compressed: {human_bytes(ks)} vs {human_bytes(ls)} "
                    f"({kb:.1f} vs {lb:.1f} bits per pixel)",
                )
            )
        if sharp:
            ksh, bsh = float(r.sharp[k]), float(r.sharp[bl])
            advantages.append((gains["sharpness"][c], f"sharper: {ksh:.3g} vs {bsh:.3g}"))
        if exif:
            text = _exif_text(r, table, k, po)
            if text is not None:
                advantages.append((gains["exif"][c], text))
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
    kx, px = int(r.exif_tags[k]), int(r.exif_tags[poorer])
    if kx - px >= RICHER_EXIF_TAGS:
        return f"richer EXIF: {kx} vs {px} tags"
    return None


def _tie_break(r: _Ranked, table: Table, k: int, end: int) -> str:
    """``quality._tie_break_reason`` for the cluster at positions k..end (keeper first)."""
    digest = table.content_hash[_row(r, k)]
    identical = digest is not None and all(
        table.content_hash[_row(r, o)] == digest for o in range(k + 1, end)
    )
    same = "identical copies" if identical else "same quality"
    rival = k + 1
    kp, rp = r.path[k], r.path[rival]
    if looks_like_copy(rp) and not looks_like_copy(kp):
        return f"{same}; the others' names look like copies"
    if len(kp) < len(rp):
        return f"{same}; shortest path"
    if r.mtime[k] < r.mtime[rival]:
        return f"{same}; oldest file"
    if kp < rp:
        return f"{same}; first path in alphabetical order"
    return f"{same}; lowest image id"


def _reference(r: _Ranked, table: Table, start: int, end: int) -> list[Ranked]:
    """The cluster at positions start..end as ``quality.Ranked`` items, for ``explain``."""
    out = []
    for place, position in enumerate(range(start, end)):
        out.append(
            Ranked(
                candidate=table.candidate(_row(r, position)),
                score=r.score[position],
                parts={name: float(values[position]) for name, values in r.parts.items()},
                rule=int(r.rule[position]),
                rank=place,
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
    """Each position's ``quality.deviations`` within its cluster (0 in a cluster of identical
    copies), the colour signatures first turned to the largest member's orientation.

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
