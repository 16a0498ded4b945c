"""What the search, match and report stages read: the indexed images as numpy columns.

Matching reads every searchable row once (``load_rows``: hashes, colour signatures, content
hashes, dates, as ``Rows``), and a few columns of a few rows later (``crop_colours`` and
``thumbnails`` through ``StoredEvidence``). The report reads the details of the clusters'
members (``member_details``) and the DCT samples of the few that can be conversions
(``dct_samples``). Each function returns arrays or typed records, never rows or sessions; the
blobs' stored layouts (big-endian hash words, 4x4 RGB signatures, the windows of rows indexed
before all of them were stored) are decoded here.
"""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import make_url

from ..columns import take_rows
from ..errors import DedupdbError
from ..hashes import CROP_LEVELS, CROP_WINDOWS, VARIANTS, HashParams
from ..signals import SIGNATURE_GRID, THUMB_SIZE
from .engine import HASH_PARAMS_KEY, Store, driver_rows
from .schema import PRESENT, Failure, Image, NotDuplicate, Root

if TYPE_CHECKING:
    from ..features import LocalFeatures

WORD_BITS = 64
# Rows indexed when only the centre 90/80/70/60 % were stored hold these first windows only.
LEGACY_WINDOWS = len(CROP_LEVELS)
# Ids per query: under SQLite's historical limit of 999 bound values; fewer queries cost less.
_CHUNK = 900
_SIGNATURE_BYTES = SIGNATURE_GRID * SIGNATURE_GRID * 3


@dataclass
class Rows:
    """The columns matching needs, one entry per searchable image, sorted by id."""

    ids: np.ndarray  # int64 image ids
    content: list[bytes]  # content hashes
    low_information: np.ndarray  # bool
    hashes: np.ndarray  # (n, 8, words) uint64: the chosen hash's 8 dihedral variants
    second: np.ndarray | None  # the same for the second hash, when one is asked for
    colour: np.ndarray  # (n, 4, 4, 3) uint8 RGB signature
    taken_at: list[str | None]
    hash_size: int
    extra_same_file: dict[int, list[int]] = field(default_factory=dict)  # id -> hidden ids
    # (n, len(CROP_WINDOWS), words) uint64 crop-window pHashes; has_crops (n, windows) False
    # where unknown (rows indexed before: none, or the first four of a four-window row)
    crops: np.ndarray | None = None
    has_crops: np.ndarray | None = None
    # The pictures shown inside others (``inner``): None when no row has one, else
    # ``InnerColumns`` for every row (``has`` False where there is none).
    inner: InnerColumns | None = None
    # (n,) int64: each picture's shorter side in pixels (None: unknown, every picture large)
    shorter_side: np.ndarray | None = None


@dataclass
class InnerColumns:
    """The stored inner pictures (``images.inner_picture``, ``inner.pack``) as columns."""

    has: np.ndarray  # (n,) bool
    hashes: np.ndarray  # (n, 8, words) uint64: the inner picture's pHash variants (0: none)
    box: (
        np.ndarray
    )  # (n, 4) float64: left, top, right, bottom fractions of the picture inside its borders
    colour: np.ndarray  # (n, 4, 4, 3) uint8 RGB signature


def hash_params(store: Store) -> HashParams | None:
    """The hash parameters the database was indexed with (None: nothing indexed yet)."""
    stored = store.get_setting(HASH_PARAMS_KEY)
    return HashParams(**stored) if stored else None


def load_rows(store: Store, algorithm: str, second: str | None = None) -> Rows:
    """The present images of the database's hash size, one per file (lowest id wins)."""
    stored = store.get_setting(HASH_PARAMS_KEY)
    params = HashParams(int(stored["hash_size"]) if stored else 8)
    column = getattr(Image, algorithm)
    second_column = getattr(Image, second or algorithm)
    query = (
        select(
            Image.id,
            Image.device,
            Image.inode,
            Image.content_hash,
            Image.low_information,
            column,
            Image.colour,
            Image.taken_at,
            second_column,
            Image.crop_phash,
            Image.inner_picture,
            Image.width,
            Image.height,
        )
        .where(Image.status == PRESENT, Image.hash_size == params.hash_size)
        .order_by(Image.id)
    )
    with store.engine.connect() as conn:  # the driver's tuples: no ORM or row objects
        records = driver_rows(conn, query)
    n_all = len(records)
    columns = list(zip(*records, strict=True)) if records else [()] * 13
    ids_all = np.asarray(columns[0], dtype=np.int64)
    keep, hidden = _one_per_file(ids_all, columns[1], columns[2])
    kept = np.flatnonzero(keep)
    kept_list = kept.tolist()
    n = len(kept)
    colours = b"".join(
        c if len(c) == _SIGNATURE_BYTES else bytes(_SIGNATURE_BYTES)
        for c in (columns[6][i] for i in kept_list)
    )
    crops, has_crops = crop_hashes([columns[9][i] for i in kept_list], params)
    return Rows(
        ids=ids_all[kept],
        content=[columns[3][i] for i in kept_list],
        low_information=np.asarray(columns[4], dtype=bool)[kept] if n_all else np.zeros(0, bool),
        hashes=_variants([columns[5][i] for i in kept_list], params, algorithm),
        second=_variants([columns[8][i] for i in kept_list], params, second) if second else None,
        crops=crops,
        has_crops=has_crops,
        colour=np.frombuffer(colours, dtype=np.uint8).reshape(n, SIGNATURE_GRID, SIGNATURE_GRID, 3),
        taken_at=[columns[7][i] for i in kept_list],
        hash_size=params.hash_size,
        extra_same_file=hidden,
        inner=inner_columns([columns[10][i] for i in kept_list], params),
        shorter_side=np.minimum(
            np.asarray(columns[12], dtype=np.int64), np.asarray(columns[11], dtype=np.int64)
        )[kept]
        if n_all
        else np.zeros(0, dtype=np.int64),
    )


def inner_columns(blobs: Sequence[bytes | None], params: HashParams) -> InnerColumns | None:
    """The stored inner pictures as columns; None when there is none (most libraries, and
    every row indexed before they were stored). A blob of another hash size is left out."""
    from ..inner import unpack

    found = []
    for i, blob in enumerate(blobs):
        unpacked = unpack(blob) if blob is not None else None
        if unpacked is not None and unpacked[1].hash_size == params.hash_size:
            found.append((i, unpacked[0]))
    if not found:
        return None
    n, words = len(blobs), params.bits // WORD_BITS
    has = np.zeros(n, dtype=bool)
    hashes = np.zeros((n, VARIANTS, words), dtype=np.uint64)
    box = np.zeros((n, 4), dtype=np.float64)
    colour = np.zeros((n, SIGNATURE_GRID, SIGNATURE_GRID, 3), dtype=np.uint8)
    for i, picture in found:
        has[i] = True
        joined = b"".join(v.to_bytes(params.nbytes, "big") for v in picture.phash)
        hashes[i] = np.frombuffer(joined, dtype=">u8").reshape(VARIANTS, words)
        box[i] = picture.box
        colour[i] = np.frombuffer(picture.colour, dtype=np.uint8).reshape(
            SIGNATURE_GRID, SIGNATURE_GRID, 3
        )
    return InnerColumns(has, hashes, box, colour)


def _one_per_file(
    ids: np.ndarray, devices: Sequence[int], inodes: Sequence[int]
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Which rows to keep, one per file reached twice (hard links, overlapping roots): its
    lowest id; and the ids hidden behind each kept one. Inode 0 means a filesystem without
    stable inode numbers: no merging there."""
    n_all = len(ids)
    device = np.asarray(devices, dtype=np.int64)
    inode = np.asarray(inodes, dtype=np.int64)
    keep = np.ones(n_all, dtype=bool)
    hidden: dict[int, list[int]] = {}
    if n_all:
        order = np.lexsort((ids, inode, device))
        same = (device[order][1:] == device[order][:-1]) & (inode[order][1:] == inode[order][:-1])
        same &= inode[order][1:] != 0
        starts = np.concatenate([[True], ~same])  # first row of each run of one file
        first_row = order[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        later = ~starts
        keep[order[later]] = False
        for row, first in zip(order[later].tolist(), first_row[later].tolist(), strict=True):
            hidden.setdefault(int(ids[first]), []).append(int(ids[row]))
    return keep, hidden


def _variants(blobs: Sequence[bytes], params: HashParams, name: str | None) -> np.ndarray:
    """Stored hash blobs (8 dihedral variants each, big-endian words) as (n, 8, words)."""
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * VARIANTS * params.nbytes:
        raise DedupdbError(
            f"the database holds {name} values of an unexpected size",
            "re-index with `dedupdb index --rehash`",
        )
    words = params.bits // WORD_BITS
    return np.frombuffer(joined, dtype=">u8").astype(np.uint64).reshape(-1, VARIANTS, words)


def _signatures(blobs: Iterable[bytes | None]) -> np.ndarray:
    """Stored 4x4 RGB colour signatures as (n, 4, 4, 3) uint8 (zeros where missing)."""
    joined = b"".join(
        c if c is not None and len(c) == _SIGNATURE_BYTES else bytes(_SIGNATURE_BYTES)
        for c in blobs
    )
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, SIGNATURE_GRID, SIGNATURE_GRID, 3)


def crop_hashes(blobs: Sequence[bytes | None], params: HashParams) -> tuple[np.ndarray, np.ndarray]:
    """The stored crop-window hashes as (n, windows, words) uint64, and which are known: all
    of a row with every window, the first four of a row indexed when only the centre 90/80/70/60
    % were stored (``hashes.CROP_LEVELS``, the first four windows), none of a row without."""
    windows, words, nbytes = len(CROP_WINDOWS), params.bits // WORD_BITS, params.nbytes
    size = windows * nbytes
    nothing = bytes(size)
    counts = []  # known windows per row
    padded = []
    for blob in blobs:
        count = len(blob) // nbytes if blob is not None else 0
        if blob is None or len(blob) % nbytes or count not in (LEGACY_WINDOWS, windows):
            counts.append(0)
            padded.append(nothing)
        else:
            counts.append(count)
            padded.append(blob if count == windows else blob + bytes(size - len(blob)))
    known = np.arange(windows) < np.asarray(counts, dtype=np.int64).reshape(-1, 1)
    hashes = np.frombuffer(b"".join(padded), dtype=">u8").astype(np.uint64)
    return hashes.reshape(len(blobs), windows, words), known


# ----------------------------------------------------------------------------- a few rows


def crop_colours(store: Store, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored crop-window colour signatures of these images, (windows, 4, 4, 3) uint8 each
    (the first four windows only for rows indexed when four were stored); images without them
    (indexed before they were stored) are left out."""
    out: dict[int, np.ndarray] = {}
    with store.engine.connect() as conn:
        for chunk in _chunks(sorted(ids), 500):
            query = select(Image.id, Image.crop_colour).where(Image.id.in_(chunk))
            for image_id, blob in conn.execute(query):
                if blob is not None and len(blob) in (
                    LEGACY_WINDOWS * _SIGNATURE_BYTES,
                    len(CROP_WINDOWS) * _SIGNATURE_BYTES,
                ):
                    out[image_id] = np.frombuffer(blob, dtype=np.uint8).reshape(
                        -1, SIGNATURE_GRID, SIGNATURE_GRID, 3
                    )
    return out


def thumbnails(store: Store, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored 32x32 grayscale thumbnails of these images, as float64 arrays."""
    out: dict[int, np.ndarray] = {}
    size = THUMB_SIZE * THUMB_SIZE
    with store.session() as session:
        for chunk in _chunks(ids, 500):
            query = select(Image.id, Image.thumb).where(Image.id.in_(chunk))
            for image_id, thumb in session.execute(query):
                if thumb is not None and len(thumb) == size:
                    out[image_id] = (
                        np.frombuffer(thumb, dtype=np.uint8)
                        .reshape(THUMB_SIZE, THUMB_SIZE)
                        .astype(np.float64)
                    )
    return out


def fine_hashes(store: Store, ids: Sequence[int]) -> dict[int, bytes]:
    """The stored fine hashes (``finehash``) of these images; images without one (indexed
    before it was stored) are left out."""
    out: dict[int, bytes] = {}
    with store.engine.connect() as conn:
        for chunk in _chunks(sorted(ids), 500):
            query = select(Image.id, Image.fine_hash).where(Image.id.in_(chunk))
            for image_id, blob in conn.execute(query):
                if blob is not None:
                    out[image_id] = bytes(blob)
    return out


@dataclass(frozen=True)
class StoredEvidence:
    """What matching reads of a few candidate pairs' images only, from the store (the
    ``match.Evidence`` protocol)."""

    store: Store

    def crop_colours(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return crop_colours(self.store, ids)

    def thumbnails(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return thumbnails(self.store, ids)

    def fine_hashes(self, ids: Sequence[int]) -> dict[int, bytes]:
        return fine_hashes(self.store, ids)


def local_features(store: Store, contents: Sequence[bytes]) -> dict[bytes, LocalFeatures]:
    """The stored local features of these content hashes (those of the current
    ``features.PARAMS``)."""
    from ..features import PARAMS, unpack
    from .schema import LocalFeatures as LocalFeaturesRow

    table = LocalFeaturesRow.__table__
    wanted = set(contents)
    out: dict[bytes, LocalFeatures] = {}
    statement = select(table).where(table.c.params == PARAMS)
    with store.engine.connect() as conn:
        for row in conn.execute(statement).mappings():
            digest = bytes(row["content_hash"])
            if digest in wanted:
                out[digest] = unpack(dict(row))
    return out


def excluded_pairs(store: Store) -> frozenset[tuple[int, int]]:
    """The (smaller id, larger id) pairs of present images the user said are not duplicates
    (decisions are kept by content hash: every present copy of either picture)."""
    with store.session() as session:
        decisions = session.execute(select(NotDuplicate.hash_a, NotDuplicate.hash_b)).all()
        if not decisions:
            return frozenset()
        hashes = sorted({h for pair in decisions for h in pair})
        ids: dict[bytes, list[int]] = defaultdict(list)
        for chunk in _chunks(hashes, 500):
            for image_id, content_hash in session.execute(
                select(Image.id, Image.content_hash).where(
                    Image.content_hash.in_(chunk), Image.status == PRESENT
                )
            ):
                ids[content_hash].append(image_id)
    pairs: set[tuple[int, int]] = set()
    for hash_a, hash_b in decisions:
        for a in ids.get(hash_a, ()):
            for b in ids.get(hash_b, ()):
                pairs.add((min(a, b), max(a, b)))
    return frozenset(pairs)


def counts(store: Store) -> tuple[int, int]:
    """The present images and the files the index could not read or skipped."""
    with store.session() as session:
        images = session.scalar(select(func.count()).where(Image.status == PRESENT)) or 0
        failures = session.scalar(select(func.count()).select_from(Failure)) or 0
    return int(images), int(failures)


def database_name(store: Store) -> str:
    """The database as a report names it: the SQLite file, or the URL without its password."""
    path = store.sqlite_path
    if path is not None:
        return str(path)
    return make_url(store.url).render_as_string(hide_password=True)


# ----------------------------------------------------------------------------- the report's


@dataclass
class Details:
    """What the report reads of the clusters' members besides what matching loaded, one
    entry per image, sorted by id. With ``member_details(..., hash_name=...)`` also the
    columns matching reads (``content_hash`` .. ``colour``); otherwise those are None."""

    image_id: np.ndarray  # int64
    raw_path: list[bytes]  # the root joined with the relative path
    size: np.ndarray  # int64
    mtime_ns: np.ndarray  # int64
    width: np.ndarray  # int64
    height: np.ndarray  # int64
    format: list[str]
    lossless: np.ndarray  # bool
    sharpness: np.ndarray  # float64
    exif_tags: np.ndarray  # int64
    camera: list[str | None]  # "make model", or the one known ("" counts as unknown)
    # The picture inside added borders; the file's size for rows indexed before it was stored.
    content_width: np.ndarray  # int64
    content_height: np.ndarray  # int64
    jpeg_quant: list[bytes | None]
    content_hash: list[bytes] | None = None
    taken_at: list[str | None] | None = None
    hashes: np.ndarray | None = None  # (n, 8, words) uint64
    colour: np.ndarray | None = None  # (n, 4, 4, 3) uint8

    def __len__(self) -> int:
        return len(self.raw_path)

    def take(self, rows: list[int]) -> Details:
        """These entries (by position), in this order; without the matching columns."""
        return take_rows(self, rows, drop=MATCHING_COLUMNS)


# The columns of ``Details`` that only ``member_details(..., hash_name=...)`` fills.
MATCHING_COLUMNS = ("content_hash", "taken_at", "hashes", "colour")


_DETAILS = (
    Image.id, Image.root_id, Image.relpath, Image.size, Image.mtime_ns, Image.width,
    Image.height, Image.format, Image.lossless, Image.sharpness, Image.exif_tags,
    Image.camera_make, Image.camera_model, Image.content_width, Image.content_height,
    Image.jpeg_quant,
)  # fmt: skip


def member_details(
    store: Store, ids: list[int], hash_name: str | None = None, params: HashParams | None = None
) -> Details:
    """The details of these images (a vanished one, or one whose root is gone, is left out),
    sorted by id; with ``hash_name`` also their content hash, date taken, colour signature
    and that hash's variants (of ``params``' size)."""
    matching: tuple[Any, ...] = ()
    if hash_name is not None:
        matching = (Image.content_hash, Image.taken_at, Image.colour, getattr(Image, hash_name))
    roots, *fields = _fetch(store, (*_DETAILS, *matching), ids)
    (image_id, root, relpath, size, mtime, width, height, fmt, lossless, sharpness, exif_tags,
     make, model, content_width, content_height, jpeg_quant) = fields[: len(_DETAILS)]  # fmt: skip
    details = Details(
        image_id=np.array(image_id, dtype=np.int64),
        raw_path=_joined_paths(roots, root, relpath),
        size=np.array(size, dtype=np.int64),
        mtime_ns=np.array(mtime, dtype=np.int64),
        width=np.array(width, dtype=np.int64),
        height=np.array(height, dtype=np.int64),
        format=list(fmt),
        lossless=np.array(lossless, dtype=bool),
        sharpness=np.array(sharpness, dtype=np.float64),
        exif_tags=np.array(exif_tags, dtype=np.int64),
        camera=[
            m + " " + k if m and k else m or k or None for m, k in zip(make, model, strict=True)
        ],
        content_width=np.array(
            [w if c is None else c for w, c in zip(width, content_width, strict=True)],
            dtype=np.int64,
        ),
        content_height=np.array(
            [h if c is None else c for h, c in zip(height, content_height, strict=True)],
            dtype=np.int64,
        ),
        jpeg_quant=list(jpeg_quant),
    )
    if hash_name is not None:
        content, taken_at, colour, blobs = fields[len(_DETAILS) :]
        details.content_hash = list(content)
        details.taken_at = list(taken_at)
        details.colour = _signatures(colour)
        details.hashes = _variants(list(blobs), params or HashParams(), hash_name)
    return details


def dct_samples(store: Store, ids: list[int]) -> dict[int, bytes | None]:
    """The stored DCT samples of these images (by id; a vanished one is left out)."""
    _, found, _, blobs = _fetch(store, (Image.id, Image.root_id, Image.dct_sample), sorted(ids))
    return dict(zip(found, blobs, strict=True))


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


def _joined_paths(
    roots: dict[int, bytes], root: Sequence[int], relpath: Sequence[bytes]
) -> list[bytes]:
    """``os.path.join(roots[r], p)`` of each image; for POSIX paths by concatenation (the
    same result without ``os.path.join``'s checks for each of a library's paths)."""
    if os.path.join is not posixpath.join:
        return [os.path.join(roots[r], p) for r, p in zip(root, relpath, strict=True)]
    prefix = {
        r: path if not path or path.endswith(b"/") else path + b"/" for r, path in roots.items()
    }
    return [p if p[:1] == b"/" else prefix[r] + p for r, p in zip(root, relpath, strict=True)]


def _chunks(values: Sequence[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


__all__ = [
    "LEGACY_WINDOWS",
    "Details",
    "InnerColumns",
    "Rows",
    "StoredEvidence",
    "counts",
    "crop_colours",
    "crop_hashes",
    "database_name",
    "dct_samples",
    "excluded_pairs",
    "fine_hashes",
    "hash_params",
    "inner_columns",
    "load_rows",
    "local_features",
    "member_details",
    "thumbnails",
]
