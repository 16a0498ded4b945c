"""The report: duplicate clusters with their keeper and reasons, as data first.

``build_report(store, options)`` finds the clusters (``cluster.find_clusters``), ranks each
cluster's members (``quality.rank``) and returns a ``Report`` of plain dataclasses that mirror
the versioned JSON schema (docs/report-schema.md) one to one, so ``Report.from_dict(r.to_dict())
== r``. Rendering is separate: ``write_json``, ``write_csv`` here and ``render_html`` in
``html_report``.
"""

from __future__ import annotations

import base64
import copy
import csv
import gc
import io
import json
import os
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import IO, Any, Protocol

import numpy as np
import orjson
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import make_url

from . import decisions
from .bktree import WORD_BITS
from .cluster import Cluster, find_clusters
from .errors import DedupdbError
from .hashes import ALGORITHMS, DIHEDRAL_NAMES, VARIANTS, HashParams
from .match import CROP, UNCROP, MatchOptions, Pair, Rows, load_rows
from .quality import Rules
from .ranking import (
    ORIGINAL_COLOURS,
    UNCROPPED,
    Rankings,
    Segments,
    Table,
    colour_deviations,
    conversion_candidates,
    keeper_distances,
    rank_clusters,
    rounded,
)
from .signals import SIGNATURE_GRID
from .store import Store, driver_rows
from .store.schema import PRESENT, Failure, Image, Root
from .tracking import record_report_totals

SCHEMA = "dedupdb-report"
SCHEMA_VERSION = 1


class PairLike(Protocol):
    """What the report reads of ``match.Pair``."""

    @property
    def a(self) -> int: ...
    @property
    def b(self) -> int: ...
    @property
    def distance(self) -> int: ...
    @property
    def exact(self) -> bool: ...
    @property
    def transform(self) -> str: ...


class ClusterLike(Protocol):
    """What the report reads of ``cluster.Cluster``."""

    @property
    def members(self) -> Sequence[int]: ...
    @property
    def exact(self) -> bool: ...
    @property
    def max_distance(self) -> int: ...
    @property
    def pairs(self) -> Sequence[PairLike]: ...


@dataclass(frozen=True)
class ReportOptions:
    """How to match (passed on to ``match.MatchOptions``) and how to choose keepers."""

    hash: str = "phash"
    threshold: int | None = None  # None: the matcher's documented default for the hash
    rotations: bool = True
    ssim: float | None = None
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    # The second hash whose matches are added (``MatchOptions.second_hash``); None: none.
    second_hash: str | None = MatchOptions.second_hash
    crops: bool = True  # match cropped copies through the stored crop-window hashes
    turned_crops: bool = False  # also cropped copies that were turned or mirrored (slower)
    # Byte-identical copies only (one content hash per cluster): no perceptual matching.
    exact: bool = False
    deep: bool = False  # also the local-feature stage (localmatch), where features are stored

    def __post_init__(self) -> None:
        for name in (self.hash, self.second_hash):
            if name is not None and name not in ALGORITHMS:
                raise DedupdbError(f"unknown hash {name!r}", f"one of {', '.join(ALGORITHMS)}")
        if self.threshold is not None and self.threshold < 0:
            raise DedupdbError("the threshold is a number of bits, 0 or more")
        if self.ssim is not None and not -1.0 <= self.ssim <= 1.0:
            raise DedupdbError("--ssim is a similarity between -1 and 1, e.g. 0.8")


@dataclass
class Member:
    """One file of a cluster. ``path`` is text; when the real path is not valid UTF-8,
    ``path_bytes_b64`` holds its exact bytes (use ``raw_path`` to reach the file)."""

    image_id: int
    path: str
    path_bytes_b64: str | None
    size: int
    mtime_ns: int
    content_hash: str  # hex
    width: int
    height: int
    format: str
    distance: int  # Hamming bits from the keeper on the report's hash (0 for the keeper)
    transform: str  # the keeper, so transformed, matches this member (hashes.DIHEDRAL_NAMES)
    score: float
    score_parts: dict[str, float]
    keeper: bool
    lossless: bool = False
    sharpness: float = 0.0
    exif_tags: int = 0
    taken_at: str | None = None
    camera: str | None = None
    # The picture inside any frame, mat or letterbox bars added around it (the file's own size
    # when there are none); None in reports written before dedupdb stored it.
    picture_width: int | None = None
    picture_height: int | None = None

    @property
    def raw_path(self) -> bytes:
        """The exact path bytes, to open the file."""
        if self.path_bytes_b64 is not None:
            return base64.b64decode(self.path_bytes_b64)
        return os.fsencode(self.path)


@dataclass
class ReportPair:
    """One matched pair that built the cluster."""

    a: int
    b: int
    distance: int
    exact: bool
    transform: str
    # Pairs found by local features (`report --deep`): what the copy is, in plain words
    # ("cropped copy", "tilted copy", "picture inside a screenshot"), and where the part lies
    # in the whole (left, top, right, bottom as fractions of the whole's picture).
    kind: str | None = None
    region: list[float] | None = None


@dataclass
class ReportCluster:
    """Members best first: the keeper, then the duplicates by falling score."""

    id: int
    exact: bool
    max_distance: int
    reclaimable_bytes: int
    keeper: int  # image id of the member to keep
    reasons: list[str]
    members: list[Member]
    pairs: list[ReportPair] = field(default_factory=list)

    @property
    def duplicates(self) -> list[Member]:
        return [m for m in self.members if m.image_id != self.keeper]


@dataclass
class Summary:
    clusters: int = 0
    duplicates: int = 0
    reclaimable_bytes: int = 0
    exact_clusters: int = 0  # clusters whose members are all byte-identical
    # duplicates that are byte-identical to another member of their cluster (in any cluster,
    # also one with edited copies): per cluster, members minus distinct content hashes
    exact_duplicates: int = 0
    images: int = 0  # present images compared
    failures: int = 0  # files the index could not read or skipped
    excluded_pairs: int = 0  # pairs left out because the user said "not duplicates"


@dataclass
class Report:
    generated_at: str
    database: str
    settings: dict[str, Any]
    summary: Summary
    clusters: list[ReportCluster]
    schema: str = SCHEMA
    version: int = SCHEMA_VERSION

    def to_dict(self, *, clusters: bool = True) -> dict[str, Any]:
        """The JSON document (see docs/report-schema.md); without the clusters if asked."""
        data = {
            "schema": self.schema,
            "version": self.version,
            "generated_at": self.generated_at,
            "database": self.database,
            "settings": copy.deepcopy(self.settings),
            "summary": asdict(self.summary),
        }
        if clusters:
            data["clusters"] = [_cluster_dict(c) for c in self.clusters]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Parse a report document (one this dedupdb or a user wrote); raises DedupdbError."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise DedupdbError("not a dedupdb report (its 'schema' is not 'dedupdb-report')")
        version = data.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise DedupdbError(
                f"report schema version {version} is newer than this dedupdb's ({SCHEMA_VERSION})",
                "upgrade dedupdb",
            )
        try:
            return cls(
                generated_at=data["generated_at"],
                database=data["database"],
                settings=dict(data["settings"]),
                summary=_build(Summary, data["summary"]),
                clusters=[_parse_cluster(c) for c in data["clusters"]],
                schema=data["schema"],
                version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DedupdbError(f"the report is damaged or incomplete: {err!r}") from err


def _cluster_dict(cluster: ReportCluster, *, copy: bool = True) -> dict[str, Any]:
    """``asdict`` by hand: a report has 100,000s of members and asdict deep-copies each.
    A dataclass instance's ``__dict__`` holds its fields in their declared order, the
    schema's; ``copy=False`` shares the lists and dicts (to serialise, not to hand out)."""
    data = dict(vars(cluster))
    if copy:
        data["reasons"] = list(cluster.reasons)
        members = []
        for member in cluster.members:
            item = dict(vars(member))
            item["score_parts"] = dict(member.score_parts)
            members.append(item)
        data["members"] = members
        data["pairs"] = [dict(vars(p)) for p in cluster.pairs]
    else:
        data["members"] = [vars(m) for m in cluster.members]
        data["pairs"] = [vars(p) for p in cluster.pairs]
    return data


def _build(cls: Any, data: dict[str, Any]) -> Any:
    """A dataclass from a dict, ignoring fields this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def _parse_cluster(data: dict[str, Any]) -> ReportCluster:
    cluster: ReportCluster = _build(ReportCluster, data)
    cluster.members = [_build(Member, m) for m in data["members"]]
    cluster.pairs = [_build(ReportPair, p) for p in data.get("pairs", [])]
    ids = {m.image_id for m in cluster.members}
    if cluster.keeper not in ids:
        raise ValueError(f"cluster {cluster.id}: keeper {cluster.keeper} is not a member")
    for member in cluster.members:
        member.keeper = member.image_id == cluster.keeper
    return cluster


# ----------------------------------------------------------------------------- building


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the block.

    A report allocates millions of small objects (pairs, members, their dicts) and no
    reference cycles; every so many allocations the collector would scan all of them again,
    about a quarter of the time at 100,000 images. Reference counting still frees everything.
    At the end, what the block allocated is moved to the oldest generation at once (what
    surviving a few collections would do): otherwise the first collection after the block
    would scan every one of those objects (0.15 s at 100,000 images). Not when the program
    froze objects itself (``gc.freeze``): unfreezing would hand those back to the collector.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def build_report(store: Store, options: ReportOptions | None = None) -> Report:
    """Find the duplicate clusters in the store and choose each one's keeper. Its figures are
    kept in the database too (the library's totals over time: ``progress.totals_history``)."""
    with gc_paused():
        report = _build_report(store, options)
    summary = report.summary
    record_report_totals(
        store,
        images=summary.images,
        clusters=summary.clusters,
        duplicates=summary.duplicates,
        reclaimable_bytes=summary.reclaimable_bytes,
        # What was asked (a default threshold stays "default"), not what the data led to.
        settings=asdict(options or ReportOptions()),
    )
    return report


def _build_report(store: Store, options: ReportOptions | None) -> Report:
    options = options or ReportOptions()
    params = _hash_params(store)
    exclude = decisions.excluded_pairs(store)
    clusters: list[ClusterLike] = []
    threshold = options.threshold
    rows = None
    if params is not None and _counts(store)[0] >= 2:
        clusters, threshold, rows = _find_clusters(store, options, params, exclude)
    return report_from_clusters(
        store, clusters, options, threshold=threshold, excluded_pairs=len(exclude), rows=rows
    )


def _find_clusters(
    store: Store, options: ReportOptions, params: HashParams, exclude: frozenset[tuple[int, int]]
) -> tuple[list[ClusterLike], int, Rows]:
    """The clusters, the threshold used and the rows matching loaded (the report takes their
    hashes, colours, content hashes and dates from there rather than reading them again)."""
    if options.exact:
        rows = load_rows(store, options.hash)
        return exact_clusters(rows), 0, rows
    match_options = MatchOptions(
        hash=options.hash,
        threshold=options.threshold,
        rotations=options.rotations,
        ssim=options.ssim,
        exclude_pairs=exclude,
        second_hash=options.second_hash,
        crops=options.crops,
        turned_crops=options.turned_crops,
        deep=options.deep,
    )
    match_options.validate()
    second = match_options.resolved_second()
    rows = load_rows(store, options.hash, second[0] if second else None)
    clusters: list[ClusterLike] = list(find_clusters(store, match_options, rows))
    return clusters, match_options.resolved_threshold(params.hash_size), rows


def exact_clusters(rows: Rows) -> list[ClusterLike]:
    """Clusters of the byte-identical copies among the rows (one content hash each), in the
    order ``cluster.build_clusters`` gives exact clusters: by lowest member id."""
    by_content: dict[bytes, list[int]] = {}
    for image_id, content in zip(rows.ids.tolist(), rows.content, strict=True):
        by_content.setdefault(content, []).append(image_id)
    found: list[ClusterLike] = []
    for ids in by_content.values():
        if len(ids) > 1:
            pairs = [Pair(ids[0], other, 0, True, "identity") for other in ids[1:]]
            found.append(Cluster(members=ids, exact=True, max_distance=0, pairs=pairs))
    found.sort(key=lambda c: c.members[0])
    return found


def _hash_params(store: Store) -> HashParams | None:
    from .store import HASH_PARAMS_KEY

    stored = store.get_setting(HASH_PARAMS_KEY)
    return HashParams(**stored) if stored else None


def report_from_clusters(
    store: Store,
    clusters: Iterable[ClusterLike],
    options: ReportOptions | None = None,
    *,
    threshold: int | None = None,
    excluded_pairs: int = 0,
    generated_at: datetime | None = None,
    rows: Rows | None = None,
) -> Report:
    """Rank the members of clusters found by the matching stage and assemble the report.

    All clusters are ranked together (``ranking.rank_clusters``, the batch form of
    ``quality.rank``): one pass of numpy over every member instead of Python per cluster.
    ``rows``: the rows the clusters were found in (``match.load_rows(store, options.hash)``),
    whose columns are then not read again.
    """
    options = options or ReportOptions()
    clusters = list(clusters)
    params = _hash_params(store) or HashParams()
    ids = sorted({i for c in clusters for i in c.members})
    if rows is not None:
        loaded = _rows_of(store, ids, rows)
    else:
        loaded = _load_rows(store, ids, options.hash, params)
    kept: list[ClusterLike] = []
    member_rows: list[list[int]] = []
    for found in clusters:
        present = [loaded.row_of[i] for i in found.members if i in loaded.row_of]
        if len(present) < 2:  # a member vanished from the database meanwhile
            continue
        kept.append(found)
        member_rows.append(present)
    # One entry per cluster member (a picture listed in two clusters is ranked in each).
    by_member = Segments.of(member_rows)
    table = loaded.table.take(by_member.rows)
    seg = Segments(np.arange(len(by_member.rows), dtype=np.int64), by_member.starts)
    hashes = loaded.hashes[by_member.rows]
    table.colour_deviation = colour_deviations(
        seg, loaded.colour[by_member.rows], hashes, table, options.rotations
    )
    table.dct_sample = _dct_samples(store, table, seg)
    rankings = rank_clusters(table, seg, Rules(prefer=options.prefer, avoid=options.avoid))
    distance, transform = keeper_distances(rankings.order, hashes, table, options.rotations)
    raw_paths = [loaded.raw_path[r] for r in by_member.rows.tolist()]
    built = _assemble(kept, rankings, table, raw_paths, distance, transform)
    built.sort(key=lambda c: (-c.reclaimable_bytes, c.members[0].path, c.keeper))
    for number, cluster in enumerate(built, start=1):
        cluster.id = number
    images, failures = _counts(store)
    summary = Summary(
        clusters=len(built),
        duplicates=sum(len(c.members) - 1 for c in built),
        reclaimable_bytes=sum(c.reclaimable_bytes for c in built),
        exact_clusters=sum(c.exact for c in built),
        exact_duplicates=sum(
            len(c.members) - len({m.content_hash for m in c.members}) for c in built
        ),
        images=images,
        failures=failures,
        excluded_pairs=excluded_pairs,
    )
    stamp = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return Report(
        generated_at=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        database=_database_name(store),
        settings={
            "hash": options.hash,
            "threshold": threshold if threshold is not None else options.threshold,
            "rotations": options.rotations,
            "crops": options.crops,
            "turned_crops": options.turned_crops,
            "exact": options.exact,
            "ssim": options.ssim,
            "second_hash": options.second_hash if options.second_hash != options.hash else None,
            "prefer": list(options.prefer),
            "avoid": list(options.avoid),
            "hash_size": params.hash_size,
        },
        summary=summary,
        clusters=built,
    )


def _assemble(
    found: Sequence[ClusterLike],
    rankings: Rankings,
    table: Table,
    raw_paths: list[bytes],
    distance: np.ndarray,
    transform: np.ndarray,
) -> list[ReportCluster]:
    """The report's clusters from the rankings (positions of ``table``, best first).

    Column by column: each field of every member is computed in one pass (numpy or a list
    comprehension), then the members are made with ``map``, positionally in ``Member``'s
    field order; hundreds of thousands of members make the per-member overhead count.
    """
    order = rankings.order
    rows = order.rows
    picks = rows.tolist()
    starts = order.starts.tolist()
    size = table.size[rows]
    names = list(rankings.parts)
    parts = zip(*(rounded(rankings.parts[name], 4) for name in names), strict=True)
    keeper = np.zeros(len(picks), dtype=bool)
    keeper[order.starts[:-1]] = True
    members = list(
        map(
            Member,
            table.image_id[rows].tolist(),
            [table.path[r] for r in picks],
            [_path_b64(raw_paths[r]) for r in picks],
            size.tolist(),
            table.mtime_ns[rows].tolist(),
            [d.hex() if d is not None else "" for d in (table.content_hash[r] for r in picks)],
            table.width[rows].tolist(),
            table.height[rows].tolist(),
            [table.format[r] for r in picks],
            distance.tolist(),
            [DIHEDRAL_NAMES[t] for t in transform.tolist()],
            rankings.score,
            [dict(zip(names, p, strict=True)) for p in parts],
            keeper.tolist(),
            table.lossless[rows].tolist(),
            rounded(table.sharpness[rows], 2),
            table.exif_tags[rows].tolist(),
            [table.taken_at[r] for r in picks],
            [table.camera[r] for r in picks],
            table.content_width[rows].tolist(),
            table.content_height[rows].tolist(),
        )
    )
    # Per cluster, the bytes of every member but the keeper (the first).
    reclaimable = (
        (np.add.reduceat(size, order.starts[:-1]) - size[order.starts[:-1]]).tolist()
        if len(picks)
        else []
    )
    built = []
    for number, cluster in enumerate(found):
        first = starts[number]
        made = ReportCluster(
            id=0,
            exact=cluster.exact,
            max_distance=cluster.max_distance,
            reclaimable_bytes=reclaimable[number],
            keeper=members[first].image_id,
            reasons=rankings.reasons[number],
            members=members[first : starts[number + 1]],
            pairs=[
                ReportPair(
                    p.a,
                    p.b,
                    p.distance,
                    p.exact,
                    p.transform,
                    getattr(p, "kind", None),
                    _region(getattr(p, "region", None)),
                )
                for p in cluster.pairs
            ],
        )
        made.reasons = name_the_edit(made)
        built.append(made)
    return built


def cropped_members(cluster: ReportCluster) -> set[int]:
    """The members found as a cropped copy of another (the cropped side of a crop pair)."""
    return {
        p.b if p.transform == CROP else p.a for p in cluster.pairs if p.transform in (CROP, UNCROP)
    }


def name_the_edit(cluster: ReportCluster) -> list[str]:
    """The keeper's reasons, with the edit named as found: when every copy whose colours
    differ from the cluster's (a low "unedited" part) is a cropped copy, the keeper is the
    uncropped picture, not the one with the original colours (a crop's colour signature
    differs from the whole picture's)."""
    if ORIGINAL_COLOURS not in cluster.reasons:
        return cluster.reasons
    differing = {
        m.image_id
        for m in cluster.members
        if not m.keeper and m.score_parts.get("unedited", 1.0) < 0.5
    }
    if not differing or not differing <= cropped_members(cluster):
        return cluster.reasons
    return [UNCROPPED if reason == ORIGINAL_COLOURS else reason for reason in cluster.reasons]


@dataclass
class _Loaded:
    """The rows of the clusters' members, by row number (``row_of`` maps image ids)."""

    row_of: dict[int, int]
    table: Table
    raw_path: list[bytes]
    hashes: np.ndarray  # (rows, 8, words) uint64: the report hash's dihedral variants
    colour: np.ndarray  # (rows, 4, 4, 3) uint8 colour signatures


# What the report reads of an image row besides the columns matching loads (``match.Rows``:
# id, content hash, colour signature, date taken and the hash's variants).
DETAILS = (
    Image.id, Image.root_id, Image.relpath, Image.size, Image.mtime_ns, Image.width,
    Image.height, Image.format, Image.lossless, Image.sharpness, Image.exif_tags,
    Image.camera_make, Image.camera_model, Image.content_width, Image.content_height,
    Image.jpeg_quant,
)  # fmt: skip
# Ids per query: under SQLite's historical limit of 999 bound values; fewer queries cost less.
_CHUNK = 900


def _fetch(store: Store, columns: Sequence[Any], ids: list[int]) -> list[Any]:
    """These columns of these images (a vanished one is left out), sorted by id (the first
    column), their root known (as an inner join would); the roots apart (a few rows):
    joining them costs SQLite a lookup per image."""
    # One statement, compiled once; the ids are expanded into it at each execution.
    query = select(*columns).where(Image.id.in_(bindparam("ids", expanding=True)))
    records: list[Any] = []
    with store.engine.connect() as conn:  # the driver's tuples: no ORM or row objects
        roots = dict(conn.execute(select(Root.id, Root.path)).all())
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            records.extend(driver_rows(conn, query, {"ids": chunk}))
    records = [r for r in records if r[1] in roots]
    records.sort(key=lambda r: r[0])
    return [roots, *(list(zip(*records, strict=True)) if records else [()] * len(columns))]


def _dct_samples(store: Store, table: Table, seg: Segments) -> list[bytes | None]:
    """The DCT samples of the members that can be conversions (``conversion_candidates``),
    None for the others: a few rows of a library, so the report reads kilobytes, not the
    samples of every lossless file."""
    samples: list[bytes | None] = [None] * len(table)
    wanted = conversion_candidates(table, seg).tolist()
    if not wanted:
        return samples
    ids = sorted({int(table.image_id[r]) for r in wanted})
    _, found, _, blobs = _fetch(store, (Image.id, Image.root_id, Image.dct_sample), ids)
    by_id = dict(zip(found, blobs, strict=True))
    for r in wanted:
        samples[r] = by_id.get(int(table.image_id[r]))
    return samples


def _load_rows(store: Store, ids: list[int], hash_name: str, params: HashParams) -> _Loaded:
    """The rows of these images, read from the database."""
    roots, *fields = _fetch(
        store,
        (*DETAILS, Image.content_hash, Image.taken_at, Image.colour, getattr(Image, hash_name)),
        ids,
    )
    *fields, content, taken_at, colour, blobs = fields
    n = len(content)
    blob_size = VARIANTS * params.nbytes
    joined = b"".join(blobs)
    if len(joined) != n * blob_size:
        raise DedupdbError(
            f"the database holds {hash_name} values of an unexpected size",
            "re-index with `dedupdb index --rehash`",
        )
    colour_size = SIGNATURE_GRID * SIGNATURE_GRID * 3
    colours = b"".join(c if c is not None and len(c) == colour_size else bytes(colour_size)
                       for c in colour)  # fmt: skip
    return _loaded(
        roots,
        fields,
        list(content),
        list(taken_at),
        np.frombuffer(joined, dtype=">u8")
        .astype(np.uint64)
        .reshape(n, VARIANTS, params.bits // WORD_BITS),
        np.frombuffer(colours, dtype=np.uint8).reshape(n, SIGNATURE_GRID, SIGNATURE_GRID, 3),
    )


def _rows_of(store: Store, ids: list[int], rows: Rows) -> _Loaded:
    """The rows of these images: ``DETAILS`` read from the database, the rest from what
    matching loaded (``rows``)."""
    roots, *fields = _fetch(store, DETAILS, ids)
    found = np.asarray(fields[0], dtype=np.int64)
    at = np.minimum(np.searchsorted(rows.ids, found), max(len(rows.ids) - 1, 0))
    known = rows.ids[at] == found if len(rows.ids) else np.zeros(len(found), dtype=bool)
    if not known.all():  # not among the rows matching loaded: not a searchable image
        keep = np.flatnonzero(known).tolist()
        fields = [[column[i] for i in keep] for column in fields]
        at = at[known]
    picks = at.tolist()
    return _loaded(
        roots,
        fields,
        [rows.content[i] for i in picks],
        [rows.taken_at[i] for i in picks],
        rows.hashes[at],
        rows.colour[at],
    )


def _loaded(
    roots: dict[int, bytes],
    fields: Sequence[Sequence[Any]],
    content: list[bytes],
    taken_at: list[str | None],
    hashes: np.ndarray,
    colour: np.ndarray,
) -> _Loaded:
    """``_Loaded`` from the ``DETAILS`` columns and what matching loads."""
    (image_id, root, relpath, size, mtime, width, height, fmt, lossless, sharpness, exif_tags,
     make, model, content_width, content_height, jpeg_quant) = fields  # fmt: skip
    raw = _joined_paths(roots, root, relpath)
    table = Table(
        image_id=np.array(image_id, dtype=np.int64),
        path=[p.decode("utf-8", "backslashreplace") for p in raw],
        size=np.array(size, dtype=np.int64),
        mtime_ns=np.array(mtime, dtype=np.int64),
        width=np.array(width, dtype=np.int64),
        height=np.array(height, dtype=np.int64),
        format=list(fmt),
        lossless=np.array(lossless, dtype=bool),
        sharpness=np.array(sharpness, dtype=np.float64),
        exif_tags=np.array(exif_tags, dtype=np.int64),
        taken_at=taken_at,
        # "make model", or the one known ("" counts as unknown), or None
        camera=[
            m + " " + k if m and k else m or k or None for m, k in zip(make, model, strict=True)
        ],
        content_hash=list(content),
        colour_deviation=np.zeros(len(raw), dtype=np.float64),
        # NULL (rows indexed before it was stored): the whole file is the picture
        content_width=np.array(
            [w if c is None else c for w, c in zip(width, content_width, strict=True)],
            dtype=np.int64,
        ),
        content_height=np.array(
            [h if c is None else c for h, c in zip(height, content_height, strict=True)],
            dtype=np.int64,
        ),
        jpeg_quant=list(jpeg_quant),
        dct_sample=[None] * len(raw),  # read for the few rows that need it (_dct_samples)
    )
    return _Loaded(
        row_of=dict(zip(map(int, image_id), range(len(raw)), strict=True)),
        table=table,
        raw_path=raw,
        hashes=hashes,
        colour=colour,
    )


def _joined_paths(
    roots: dict[int, bytes], root: Sequence[int], relpath: Sequence[bytes]
) -> list[bytes]:
    """``os.path.join(roots[r], p)`` of each image; for POSIX paths by concatenation (the
    same result, a tenth of the time)."""
    if os.path.join is not posixpath.join:
        return [os.path.join(roots[r], p) for r, p in zip(root, relpath, strict=True)]
    prefix = {
        r: path if not path or path.endswith(b"/") else path + b"/" for r, path in roots.items()
    }
    return [p if p[:1] == b"/" else prefix[r] + p for r, p in zip(root, relpath, strict=True)]


def _region(region: tuple[float, ...] | None) -> list[float] | None:
    return list(region) if region is not None else None


def _path_b64(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
    return None


def _counts(store: Store) -> tuple[int, int]:
    with store.session() as session:
        images = session.scalar(select(func.count()).where(Image.status == PRESENT)) or 0
        failures = session.scalar(select(func.count()).select_from(Failure)) or 0
    return int(images), int(failures)


def _database_name(store: Store) -> str:
    path = store.sqlite_path
    if path is not None:
        return str(path)
    return make_url(store.url).render_as_string(hide_password=True)


def cluster_membership(report: Report) -> dict[int, list[int]]:
    """Cluster id -> image ids, for ``decisions.remember_clusters``."""
    return {c.id: [m.image_id for m in c.members] for c in report.clusters}


def actionable(report: Report) -> dict[str, Any]:
    """The report as ``apply`` reads it (a valid report document, ``plan.check_report``) with
    only what acting needs: its time and settings, and per cluster its keeper and members'
    ids, paths, content hashes and camera metadata. Recorded by
    ``decisions.remember_report``."""
    data = report.to_dict(clusters=False)
    data["clusters"] = [
        {
            "id": c.id,
            "exact": c.exact,
            "keeper": c.keeper,
            "members": [
                {
                    "image_id": m.image_id,
                    "path": m.path,
                    "path_bytes_b64": m.path_bytes_b64,
                    "content_hash": m.content_hash,
                    # the camera's metadata, when known: the plan warns before a copy that
                    # has it goes while its keeper has not (plan.metadata_lost)
                    **({"camera": m.camera} if m.camera else {}),
                    **({"taken_at": m.taken_at} if m.taken_at else {}),
                }
                for m in c.members
            ],
        }
        for c in report.clusters
    ]
    return data


# ----------------------------------------------------------------------------- JSON and CSV


def write_json(report: Report, out: IO[str]) -> None:
    """The report document, one top-level field per line and one cluster per line: easy to
    read, diff and edit (change a keeper, delete a cluster's line).

    Encoded with orjson (compact separators; its dataclass support reads each cluster and
    member as it stands, without building dicts), about eight times faster than the standard
    library here. A value orjson refuses (text that is not valid Unicode, an integer beyond
    64 bits) is left to the standard library's encoder, which writes what it always wrote.
    """
    with gc_paused():
        text = _json_text(report)
    out.write(text)


def _json_text(report: Report) -> str:
    data = report.to_dict(clusters=False)
    parts = ["{"]
    for key, value in data.items():
        parts.append(f"{_dumps(key)}: {_dumps(value)},")
    if report.clusters:
        parts.append('"clusters": [')
        parts.append(",\n".join([_dumps(cluster) for cluster in report.clusters]))
        parts.append("]}")
    else:
        parts.append('"clusters": []}')
    return "\n".join(parts) + "\n"


def _dumps(value: Any) -> str:
    """One JSON value: orjson, else the standard library (see ``write_json``)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        if isinstance(value, ReportCluster):
            value = _cluster_dict(value, copy=False)
        return json.dumps(value, ensure_ascii=False, check_circular=False)


def to_json(report: Report) -> str:
    buffer = io.StringIO()
    write_json(report, buffer)
    return buffer.getvalue()


def read_json(text: str) -> Report:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DedupdbError(f"not a JSON report: {err}") from err
    return Report.from_dict(data)


CSV_COLUMNS = (
    "cluster", "exact", "max_distance", "cluster_reclaimable_bytes", "keeper", "image_id",
    "path", "size", "width", "height", "format", "distance", "transform", "score", "taken_at",
    "camera", "mtime_ns", "content_hash", "reasons",
)  # fmt: skip


# A spreadsheet reads a cell that begins with one of these as a formula (OWASP's "CSV
# injection"): EXIF text such as a camera maker `=HYPERLINK(...)` would become a live link.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` (OWASP's
    advice; the spreadsheet then shows the text as it is). Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(report: Report, out: IO[str]) -> None:
    """One row per member, keeper first in each cluster; the reasons on the keeper's row.
    Text that a spreadsheet would take for a formula is neutralised (``csv_cell``)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cluster in report.clusters:
        for member in cluster.members:
            writer.writerow(
                csv_cell(cell)
                for cell in [
                    cluster.id,
                    int(cluster.exact),
                    cluster.max_distance,
                    cluster.reclaimable_bytes,
                    int(member.keeper),
                    member.image_id,
                    member.path,
                    member.size,
                    member.width,
                    member.height,
                    member.format,
                    member.distance,
                    member.transform,
                    f"{member.score:.4f}",
                    member.taken_at or "",
                    member.camera or "",
                    member.mtime_ns,
                    member.content_hash,
                    "; ".join(cluster.reasons) if member.keeper else "",
                ]
            )


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    write_csv(report, buffer)
    return buffer.getvalue()
