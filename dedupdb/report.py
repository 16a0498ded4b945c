"""The report stage: duplicate clusters with their keeper and reasons, as data first.

``build_report(store, options)`` reads the library's rows (``store.catalog``), runs the stages
in order (``match.match_rows``: pairs; ``cluster.build_clusters``: clusters;
``keeper.rank_clusters``: each cluster's keeper and reasons) and returns a ``Report`` of plain
dataclasses that mirror the versioned JSON schema (docs/report-schema.md) one to one, so
``Report.from_dict(r.to_dict()) == r``. Rendering is separate (``render``: JSON, CSV, HTML).
``find_pairs`` and ``find_clusters`` run the first stages alone over a store.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

from .cluster import Cluster, build_clusters
from .collector import gc_paused
from .errors import DedupdbError
from .hashes import ALGORITHMS, DIHEDRAL_NAMES, HashParams
from .keeper import (
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
from .keeper_rules import Rules
from .match import (
    CROP,
    INSIDE_A_SCREENSHOT,
    TONINGS,
    UNCROP,
    MatchOptions,
    Pair,
    Searcher,
    match_rows,
)
from .search import all_pairs
from .store import Store, catalog
from .store.catalog import Details, Rows, StoredEvidence
from .store.reports import record_report_totals

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
            data["clusters"] = [cluster_dict(c) for c in self.clusters]
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


def cluster_dict(cluster: ReportCluster, *, copy: bool = True) -> dict[str, Any]:
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


# ----------------------------------------------------------------------------- the stages


def _rows_for(store: Store, options: MatchOptions) -> Rows:
    """The rows matching with these options reads (the second hash's too, if any)."""
    second = options.resolved_second()
    return catalog.load_rows(store, options.hash, second[0] if second else None)


def find_pairs(
    store: Store, options: MatchOptions, rows: Rows | None = None, searcher: Searcher = all_pairs
) -> list[Pair]:
    """Every pair of duplicate images in the database, sorted by (a, b) (``match.match_rows``
    over its rows; ``rows``: the rows already loaded by the caller, to share them;
    ``searcher``: where the all-pairs search runs)."""
    options.validate()
    if rows is None:
        rows = _rows_for(store, options)
    return match_rows(rows, options, StoredEvidence(store), searcher)


def find_clusters(
    store: Store, options: MatchOptions, rows: Rows | None = None, searcher: Searcher = all_pairs
) -> list[Cluster]:
    """The database's duplicate clusters: ``find_pairs`` then ``cluster.build_clusters``
    (``rows``: the rows already loaded, see ``find_pairs``). With ``options.deep``, the
    local-feature stage's pairs join, and its guards apply to the hashes' pairs
    (``localmatch.deep_pairs``, over the features stored for the rows)."""
    options.validate()
    if rows is None:
        rows = _rows_for(store, options)
    pairs = match_rows(rows, options, StoredEvidence(store), searcher)
    if options.deep:
        from .features import require_opencv
        from .localmatch import deep_contents, deep_pairs  # loads OpenCV: only for --deep

        require_opencv()
        features = catalog.local_features(store, deep_contents(rows))
        pairs = deep_pairs(rows, features, pairs, options)
    return build_clusters(pairs)


def build_report(
    store: Store, options: ReportOptions | None = None, *, searcher: Searcher = all_pairs
) -> Report:
    """Find the duplicate clusters in the store and choose each one's keeper. Its figures are
    kept in the database too (the library's totals over time: ``progress.totals_history``).
    ``searcher``: where the all-pairs search runs (a Dask cluster: ``distributed.search``)."""
    with gc_paused():
        report = _build_report(store, options, searcher)
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


def _build_report(store: Store, options: ReportOptions | None, searcher: Searcher) -> Report:
    options = options or ReportOptions()
    params = catalog.hash_params(store)
    exclude = catalog.excluded_pairs(store)
    clusters: list[ClusterLike] = []
    threshold = options.threshold
    rows = None
    if params is not None and catalog.counts(store)[0] >= 2:
        clusters, threshold, rows = _find_clusters(store, options, params, exclude, searcher)
    return report_from_clusters(
        store, clusters, options, threshold=threshold, excluded_pairs=len(exclude), rows=rows
    )


def _find_clusters(
    store: Store,
    options: ReportOptions,
    params: HashParams,
    exclude: frozenset[tuple[int, int]],
    searcher: Searcher,
) -> tuple[list[ClusterLike], int, Rows]:
    """The clusters, the threshold used and the rows matching loaded (the report takes their
    hashes, colours, content hashes and dates from there rather than reading them again)."""
    if options.exact:
        rows = catalog.load_rows(store, options.hash)
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
    rows = _rows_for(store, match_options)
    clusters: list[ClusterLike] = list(find_clusters(store, match_options, rows, searcher))
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

    All clusters are ranked together (``keeper.rank_clusters``): one pass of numpy over every
    member instead of Python per cluster. ``rows``: the rows the clusters were found in
    (``store.catalog.load_rows(store, options.hash)``), whose columns are then not read again.
    """
    options = options or ReportOptions()
    clusters = list(clusters)
    params = catalog.hash_params(store) or HashParams()
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
    _screenshots_show_their_picture(kept, table, StoredEvidence(store).thumbnails)
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
    images, failures = catalog.counts(store)
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
        database=catalog.database_name(store),
        settings={
            "hash": options.hash,
            "threshold": threshold if threshold is not None else options.threshold,
            "rotations": options.rotations,
            "crops": options.crops,
            "turned_crops": options.turned_crops,
            "exact": options.exact,
            "deep": options.deep,
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


def _screenshots_show_their_picture(
    clusters: Sequence[ClusterLike],
    table: Table,
    thumbnails: Callable[[Sequence[int]], dict[int, np.ndarray]],
) -> None:
    """Rank a copy that shows another picture whole by the picture it shows, so the keeper is
    the picture, not the larger copy around it (``table``: one entry per cluster member):

    - a screenshot: its content is the part its pair's region covers (as a picture inside
      added borders);
    - a tilted copy whose turned frame holds the other picture whole, with corners added
      around it: its content is the other's size, as if the corners were added borders (the
      turned picture is no larger than it was). The geometry alone cannot tell it from a
      tilted copy cropped inside the other (the part's turned frame touches the whole's edges
      either way): the whole's corners, flat and of one level (``filled_corners``, on its
      stored thumbnail), can.
    """
    regions: dict[int, tuple[float, float, float, float]] = {}
    holders: dict[int, int] = {}  # a tilted copy with corners -> the picture it holds
    for found in clusters:
        for p in found.pairs:
            region = getattr(p, "region", None)
            kind = getattr(p, "kind", None)
            if region is None or p.transform not in (CROP, UNCROP):
                continue
            part, whole = (p.b, p.a) if p.transform == CROP else (p.a, p.b)
            if kind == INSIDE_A_SCREENSHOT:
                regions[whole] = region
            elif kind == TILTED_COPY and min(region[2] - region[0], region[3] - region[1]) >= (
                NEARLY_WHOLE
            ):
                holders[whole] = part
    if holders:
        corners = thumbnails(sorted(holders))
        holders = {h: p for h, p in holders.items() if h in corners and filled_corners(corners[h])}
    if not regions and not holders:
        return
    ids = table.image_id.tolist()
    size = {
        image_id: (int(table.content_width[entry]), int(table.content_height[entry]))
        for entry, image_id in enumerate(ids)
    }
    for entry, image_id in enumerate(ids):
        region = regions.get(image_id)
        width, height = size[image_id]
        if region is not None:
            left, top, right, bottom = region
            # Regions are shares of the picture inside any added borders (its content size).
            table.content_width[entry] = max(1, round(width * (right - left)))
            table.content_height[entry] = max(1, round(height * (bottom - top)))
        elif image_id in holders and holders[image_id] in size:
            held_width, held_height = size[holders[image_id]]
            table.content_width[entry] = min(width, held_width)
            table.content_height[entry] = min(height, held_height)


def filled_corners(thumb: np.ndarray) -> bool:
    """Whether the four corners of a (32x32 grey) thumbnail are flat and of one level: the
    fill a turned picture's frame gets where the picture does not reach."""
    patches = [thumb[:CORNER, :CORNER], thumb[:CORNER, -CORNER:]]
    patches += [thumb[-CORNER:, :CORNER], thumb[-CORNER:, -CORNER:]]
    levels = [float(patch.mean()) for patch in patches]
    flat = all(float(np.ptp(patch)) <= CORNER_FLAT for patch in patches)
    return flat and max(levels) - min(levels) <= CORNER_FLAT


# A turned picture's added corners reach 2 px into a 32-px thumbnail from a turn of about 8
# degrees on (smaller turns are left to the hashes); within 6 levels they are flat.
CORNER = 2
CORNER_FLAT = 6.0


# ``localmatch.TILTED`` (not imported: it loads the local-feature stage); a tilted copy whose
# region covers at least this share of both its sides holds the other picture whole.
TILTED_COPY = "tilted copy"
NEARLY_WHOLE = 0.95


def cropped_members(cluster: ReportCluster) -> set[int]:
    """The members found as a cropped copy of another (the cropped side of a crop pair)."""
    return {
        p.b if p.transform == CROP else p.a for p in cluster.pairs if p.transform in (CROP, UNCROP)
    }


def name_the_edit(cluster: ReportCluster) -> list[str]:
    """The keeper's reasons, with the edit named as found: when every copy whose colours
    differ from the cluster's (a low "unedited" part) is a cropped copy, the keeper is the
    uncropped picture, not the one with the original colours (a crop's colour signature
    differs from the whole picture's); when every such copy is a toned copy (sepia), the
    reason says so. Pairs that say what kind of copy they are (a tilted copy, a picture
    inside a screenshot: ``ReportPair.kind``) are named too: in place of the colours when
    they explain them, else as a last reason."""
    toned = toned_members(cluster)
    kinds = list(
        dict.fromkeys(p.kind for p in cluster.pairs if p.kind and p.kind not in toned_kinds())
    )
    named = _colours_named(cluster, kinds, toned)
    if named is not None:
        return named
    if kinds:
        return [*cluster.reasons, f"the copies include {_a_list(kinds)}"]
    return cluster.reasons


def toned_kinds() -> set[str]:
    """The kinds a toned pair has ("same picture, sepia"): colour edits, not part-copies."""
    return set(TONINGS.values())


def _colours_named(
    cluster: ReportCluster, kinds: list[str], toned: dict[int, str]
) -> list[str] | None:
    """The reasons with ORIGINAL_COLOURS replaced by the edit that explains the differing
    colours (see ``name_the_edit``), or None when there is none to replace."""
    if ORIGINAL_COLOURS not in cluster.reasons:
        return None
    differing = {
        m.image_id
        for m in cluster.members
        if not m.keeper and m.score_parts.get("unedited", 1.0) < 0.5
    }
    if not differing:
        return None
    if differing <= set(toned):
        # "original colours (another copy is the same picture, sepia)"
        toning = sorted({toned[m] for m in differing})
        text = f"original colours (another copy is the {' or '.join(toning)})"
        return [text if reason == ORIGINAL_COLOURS else reason for reason in cluster.reasons]
    parts = {i for p in cluster.pairs if p.kind in kinds for i in (p.a, p.b)}
    if not differing <= cropped_members(cluster) | parts:
        return None
    if kinds and set(kinds) != {CROPPED_COPY}:
        text = f"unedited (another copy is {_a_list(kinds)})"
    else:
        text = UNCROPPED
    return [text if reason == ORIGINAL_COLOURS else reason for reason in cluster.reasons]


def toned_members(cluster: ReportCluster) -> dict[int, str]:
    """The members of a toned pair (``match.TONINGS``: "same picture, sepia") that is not
    the keeper, with the pair's kind: the toned copy of the keeper, or of one of its copies."""
    toned: dict[int, str] = {}
    for p in cluster.pairs:
        if p.kind is not None and p.kind in TONINGS.values():
            for member in (p.a, p.b):
                if member != cluster.keeper:
                    toned.setdefault(member, p.kind)
    return toned


# ``localmatch.CROPPED``: a crop found by local features is named as the hashes' crops are.
CROPPED_COPY = "cropped copy"


def _a_list(kinds: list[str]) -> str:
    """ "a tilted copy", "a tilted copy and a cropped copy", ..."""
    named = [f"a {kind}" for kind in kinds]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


@dataclass
class _Loaded:
    """The rows of the clusters' members, by row number (``row_of`` maps image ids)."""

    row_of: dict[int, int]
    table: Table
    raw_path: list[bytes]
    hashes: np.ndarray  # (rows, 8, words) uint64: the report hash's dihedral variants
    colour: np.ndarray  # (rows, 4, 4, 3) uint8 colour signatures


def _dct_samples(store: Store, table: Table, seg: Segments) -> list[bytes | None]:
    """The DCT samples of the members that can be conversions (``conversion_candidates``),
    None for the others: a few rows of a library, so the report reads kilobytes, not the
    samples of every lossless file."""
    samples: list[bytes | None] = [None] * len(table)
    wanted = conversion_candidates(table, seg).tolist()
    if not wanted:
        return samples
    by_id = catalog.dct_samples(store, sorted({int(table.image_id[r]) for r in wanted}))
    for r in wanted:
        samples[r] = by_id.get(int(table.image_id[r]))
    return samples


def _load_rows(store: Store, ids: list[int], hash_name: str, params: HashParams) -> _Loaded:
    """The rows of these images, read from the database."""
    details = catalog.member_details(store, ids, hash_name, params)
    assert details.content_hash is not None and details.taken_at is not None
    assert details.hashes is not None and details.colour is not None
    return _loaded(details, details.content_hash, details.taken_at, details.hashes, details.colour)


def _rows_of(store: Store, ids: list[int], rows: Rows) -> _Loaded:
    """The rows of these images: their details read from the database, the rest from what
    matching loaded (``rows``)."""
    details = catalog.member_details(store, ids)
    found = details.image_id
    at = np.minimum(np.searchsorted(rows.ids, found), max(len(rows.ids) - 1, 0))
    known = rows.ids[at] == found if len(rows.ids) else np.zeros(len(found), dtype=bool)
    if not known.all():  # not among the rows matching loaded: not a searchable image
        details = details.take(np.flatnonzero(known).tolist())
        at = at[known]
    picks = at.tolist()
    return _loaded(
        details,
        [rows.content[i] for i in picks],
        [rows.taken_at[i] for i in picks],
        rows.hashes[at],
        rows.colour[at],
    )


def _loaded(
    details: Details,
    content: list[bytes],
    taken_at: list[str | None],
    hashes: np.ndarray,
    colour: np.ndarray,
) -> _Loaded:
    """``_Loaded`` from the members' details and what matching loads."""
    raw = details.raw_path
    table = Table(
        image_id=details.image_id,
        path=[p.decode("utf-8", "backslashreplace") for p in raw],
        size=details.size,
        mtime_ns=details.mtime_ns,
        width=details.width,
        height=details.height,
        format=details.format,
        lossless=details.lossless,
        sharpness=details.sharpness,
        exif_tags=details.exif_tags,
        taken_at=taken_at,
        camera=details.camera,
        content_hash=list(content),
        colour_deviation=np.zeros(len(raw), dtype=np.float64),
        content_width=details.content_width,
        content_height=details.content_height,
        jpeg_quant=details.jpeg_quant,
        dct_sample=[None] * len(raw),  # read for the few rows that need it (_dct_samples)
    )
    return _Loaded(
        row_of=dict(zip(details.image_id.tolist(), range(len(raw)), strict=True)),
        table=table,
        raw_path=raw,
        hashes=hashes,
        colour=colour,
    )


def _region(region: tuple[float, ...] | None) -> list[float] | None:
    return list(region) if region is not None else None


def _path_b64(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
    return None


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
