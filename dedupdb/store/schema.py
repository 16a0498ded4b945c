"""The database schema as typed SQLAlchemy models. Alembic migrations create and change it.

Every table and column says why it exists (``comment=``); PostgreSQL keeps these comments in
its catalogue, SQLite ignores them. Paths are stored as bytes (``relpath``) so that names which
are not valid UTF-8 survive losslessly, next to a readable ``display_path``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so that migrations (and Alembic's batch mode on SQLite) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Image row statuses.
PRESENT = "present"  # seen by the latest index run of its root
MISSING = "missing"  # not found by the latest run; kept until `dedupdb prune`
# Set by `dedupdb apply` (the journal in `actions` says where the file went); `dedupdb undo`
# sets them back to present. Only present rows take part in matching and reports.
QUARANTINED = "quarantined"  # moved to the quarantine folder (--move-to)
TRASHED = "trashed"  # sent to the desktop trash (--trash)
DELETED = "deleted"  # removed for good (--delete)
LINKED = "linked"  # replaced by a hard or symbolic link to its keeper (--hardlink, --symlink)

# Failure kinds.
FAILED = "failed"  # could not be read or decoded
SKIPPED = "skipped"  # readable, but deliberately not indexed (e.g. below --min-resolution)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Setting(Base):
    __tablename__ = "settings"
    __table_args__ = {"comment": "Database-wide parameters, e.g. the hash size all rows share"}

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, comment="JSON-encoded value")


class Root(Base):
    __tablename__ = "roots"
    __table_args__ = {"comment": "A folder the user indexed; its images' paths are relative"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[bytes] = mapped_column(LargeBinary, unique=True, comment="absolute, as bytes")
    display_path: Mapped[str] = mapped_column(Text, comment="path as readable text")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_indexed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("root_id", "relpath"),
        Index("ix_images_content_hash", "content_hash"),
        Index("ix_images_root_status", "root_id", "status"),
        {"comment": "One row per indexed image file: identity, metadata, hashes, signals"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root_id: Mapped[int] = mapped_column(ForeignKey("roots.id", ondelete="CASCADE"))
    relpath: Mapped[bytes] = mapped_column(LargeBinary, comment="path below the root, as bytes")
    display_path: Mapped[str] = mapped_column(Text, comment="relpath as readable text")
    status: Mapped[str] = mapped_column(
        String(16), comment="present, missing, or what `apply` did: quarantined, linked..."
    )

    # Change detection: a file whose (size, mtime_ns) is unchanged is not opened again.
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    device: Mapped[int] = mapped_column(BigInteger, comment="st_dev: same file = same inode")
    inode: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32), comment="BLAKE3-256 of the bytes")

    # What the file says about itself.
    width: Mapped[int] = mapped_column(Integer, comment="upright (EXIF orientation applied)")
    height: Mapped[int] = mapped_column(Integer)
    # The picture inside any borders, frames, mats or letterbox/pillarbox bars added around it
    # (decode.content_box), in the file's pixels: the same as width/height when it has none.
    # The keeper ranking compares pictures, not bars. NULL for rows indexed before it existed.
    content_width: Mapped[int | None] = mapped_column(
        Integer, nullable=True, comment="width of the picture inside added borders"
    )
    content_height: Mapped[int | None] = mapped_column(
        Integer, nullable=True, comment="height of the picture inside added borders"
    )
    format: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16), comment="Pillow mode of the stored pixels")
    bit_depth: Mapped[int] = mapped_column(Integer)
    lossless: Mapped[bool] = mapped_column(Boolean)
    frames: Mapped[int] = mapped_column(Integer, comment="> 1 for animations; first is hashed")
    orientation: Mapped[int] = mapped_column(Integer, comment="EXIF orientation, 1 = upright")
    taken_at: Mapped[str | None] = mapped_column(String(32), comment="EXIF date, ISO")
    camera_make: Mapped[str | None] = mapped_column(Text)
    camera_model: Mapped[str | None] = mapped_column(Text)
    exif_tags: Mapped[int] = mapped_column(Integer, comment="how many EXIF tags it carries")
    # What the decoder warned about while the pixels were read (corrupt EXIF, an orientation
    # outside 1-8, a text chunk cut to Pillow's limit), one note a line; NULL when nothing.
    note: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="decoder warnings, one a line; NULL when none"
    )

    # Perceptual hashes: each blob holds the 8 dihedral variants (identity first), each
    # hash_size^2 bits, big-endian (see hashes.pack_variants).
    hash_size: Mapped[int] = mapped_column(Integer, comment="8 (64-bit) or 16 (256-bit)")
    phash: Mapped[bytes] = mapped_column(LargeBinary)
    dhash: Mapped[bytes] = mapped_column(LargeBinary)
    ahash: Mapped[bytes] = mapped_column(LargeBinary)
    whash: Mapped[bytes] = mapped_column(LargeBinary)
    # pHash of each crop window (hashes.CROP_WINDOWS: the centre 90 to 40 % in steps of 5 %,
    # and 90/80/70 % of the width or of the height only), upright, one after the other: what a
    # cropped copy's full-frame hash is compared with. Rows indexed before migration 0008 hold
    # the first four windows only (the centre 90/80/70/60 %); NULL for rows indexed before 0005.
    crop_phash: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="pHash of each crop window (hashes.CROP_WINDOWS)"
    )
    # The 4x4 RGB signature of each of those windows (signals.crop_colours), for the colour
    # guard of crop pairs. NULL for rows indexed before migration 0006 (the guard then
    # resamples the full signature, more coarsely).
    crop_colour: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="4x4 RGB mean grid of each crop window"
    )

    # Signals for ranking and false-positive guards (see signals.py).
    sharpness: Mapped[float] = mapped_column(Float)
    low_information: Mapped[bool] = mapped_column(Boolean, comment="near-uniform picture")
    colour: Mapped[bytes] = mapped_column(LargeBinary, comment="4x4 RGB mean grid")
    thumb: Mapped[bytes] = mapped_column(LargeBinary, comment="32x32 gray, for SSIM")
    # What proves a lossless file a conversion of a JPEG (signals.conversion_fit): the JPEG's
    # luma quantization table, the lossless picture's DCT sample. NULL for other files and
    # for rows indexed before migration 0013.
    jpeg_quant: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="a JPEG's luma quantization table (64 steps)"
    )
    dct_sample: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="a lossless picture's luma DCT sample"
    )
    # A picture shown inside this one, as in a phone screenshot (its box and hashes), and
    # finer hashes that tell look-alike layouts apart (document pages, product shots). NULL
    # for rows indexed before migration 0014 and, for inner_picture, when there is none.
    inner_picture: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="a picture shown inside this one: its box and hashes"
    )
    fine_hash: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="finer hashes for look-alike layouts"
    )

    indexed_at: Mapped[datetime] = mapped_column(DateTime)


class Failure(Base):
    __tablename__ = "failures"
    __table_args__ = (
        UniqueConstraint("root_id", "relpath"),
        {"comment": "Files that could not be indexed, and why; retried only when they change"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root_id: Mapped[int] = mapped_column(ForeignKey("roots.id", ondelete="CASCADE"))
    relpath: Mapped[bytes] = mapped_column(LargeBinary)
    display_path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), comment="failed or skipped")
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, comment="-1 when it could not be stat'ed")
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = {"comment": "Index runs: a lock against concurrent writers, and history"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root_id: Mapped[int | None] = mapped_column(
        ForeignKey("roots.id", ondelete="SET NULL"), nullable=True
    )
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), comment="running, done, interrupted")
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True, comment="JSON summary")


class NotDuplicate(Base):
    __tablename__ = "not_duplicates"
    __table_args__ = (
        UniqueConstraint("hash_a", "hash_b"),
        {"comment": "Pairs the user said are not duplicates; kept out of every later report"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # By content, not by image id: the decision follows the pictures through moves, renames,
    # prune and re-index, and covers every exact copy of either picture.
    hash_a: Mapped[bytes] = mapped_column(LargeBinary(32), comment="content hash, the smaller")
    hash_b: Mapped[bytes] = mapped_column(LargeBinary(32), comment="content hash, the larger")
    path_a: Mapped[str] = mapped_column(Text, comment="a path of picture a when decided, to show")
    path_b: Mapped[str] = mapped_column(Text, comment="a path of picture b when decided, to show")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ApplyRun(Base):
    __tablename__ = "apply_runs"
    __table_args__ = {"comment": "One `dedupdb apply`: what it did, so it can be resumed or undone"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(
        String(16), comment="move, trash, hardlink, symlink or delete"
    )
    status: Mapped[str] = mapped_column(
        String(16), comment="running, interrupted, done, undone, partly-undone"
    )
    quarantine: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="folder the files were moved to (move, links)"
    )
    source: Mapped[str] = mapped_column(Text, comment="the report file, or the live report")
    host: Mapped[str] = mapped_column(String(255), comment="who runs it: a live run is a lock")
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Action(Base):
    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_run_id_state", "run_id", "state"),
        {"comment": "The journal: one row per file, written before and after touching it"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("apply_runs.id", ondelete="CASCADE"))
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), nullable=True, comment="the duplicate"
    )
    keeper_id: Mapped[int | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), nullable=True
    )
    cluster: Mapped[int] = mapped_column(Integer, comment="the report's cluster id")
    state: Mapped[str] = mapped_column(
        String(16),
        comment="planned (may be mid-way: check the disk), done, skipped, undone",
    )
    path: Mapped[bytes] = mapped_column(LargeBinary, comment="the duplicate's absolute path")
    display_path: Mapped[str] = mapped_column(Text)
    keeper_path: Mapped[bytes] = mapped_column(LargeBinary)
    destination: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="where it went (quarantine, trash); set before"
    )
    size: Mapped[int] = mapped_column(BigInteger, comment="indexed size, mtime and hash")
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True, comment="why skipped")
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class RunProgress(Base):
    __tablename__ = "run_progress"
    __table_args__ = (
        Index("ix_run_progress_state", "state"),
        {"comment": "How each index, apply or undo run goes, updated as it runs: watched live"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), comment="index, apply, resume or undo")
    # One of the two, by kind. An apply run is also the row its resume and undo act on, so
    # several progress rows may point to one apply run.
    index_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), nullable=True
    )
    apply_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("apply_runs.id", ondelete="CASCADE"), nullable=True
    )
    target: Mapped[str] = mapped_column(Text, comment="the folder indexed, or the report acted on")
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(
        String(16), comment="running, finished, failed, interrupted (a dead run still says running)"
    )
    phase: Mapped[str] = mapped_column(String(16), comment="planning (walking) or working")
    started_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, comment="heartbeat: the last update")
    progressed_at: Mapped[datetime] = mapped_column(
        DateTime, comment="when a count last moved: a run that stops moving is stuck"
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    planned: Mapped[int] = mapped_column(Integer, comment="files to process (apply: actions)")
    seen: Mapped[int] = mapped_column(Integer, comment="files the walk has seen so far")
    done: Mapped[int] = mapped_column(Integer, comment="files processed so far")
    new: Mapped[int] = mapped_column(Integer)
    changed: Mapped[int] = mapped_column(Integer)
    moved: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    bytes_read: Mapped[int] = mapped_column(BigInteger, comment="apply: bytes acted on")
    rate: Mapped[float] = mapped_column(Float, comment="files per second over the last seconds")
    workers: Mapped[str] = mapped_column(Text, comment="JSON: each worker's pid and file")
    errors: Mapped[str] = mapped_column(Text, comment="JSON: the latest errors, numbered")
    message: Mapped[str | None] = mapped_column(Text, nullable=True, comment="why it failed")


class ReportTotals(Base):
    __tablename__ = "report_totals"
    __table_args__ = {"comment": "The figures of each report made: the library's totals over time"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    made_at: Mapped[datetime] = mapped_column(DateTime)
    images: Mapped[int] = mapped_column(Integer, comment="present images compared")
    clusters: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer, comment="copies that are not their keeper")
    reclaimable_bytes: Mapped[int] = mapped_column(BigInteger)
    settings: Mapped[str] = mapped_column(Text, comment="JSON: the report's match settings")


class LocalFeatures(Base):
    __tablename__ = "local_features"
    __table_args__ = {
        "comment": "ORB keypoints of a picture's content, for the second matching stage "
        "(`index --features`, `report --deep`); one row per content, shared by its copies"
    }

    # By content, not by image id: an exact copy or a moved file needs no second extraction.
    content_hash: Mapped[bytes] = mapped_column(
        LargeBinary(32), primary_key=True, comment="BLAKE3-256 of the file's bytes"
    )
    params: Mapped[str] = mapped_column(
        String(64), comment="features.PARAMS when extracted; rows of others are not compared"
    )
    width: Mapped[int] = mapped_column(Integer, comment="of the feature image the points are in")
    height: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer, comment="keypoints stored")
    points: Mapped[bytes] = mapped_column(
        LargeBinary, comment="x, y per keypoint, uint16 little-endian quarter pixels"
    )
    descriptors: Mapped[bytes] = mapped_column(LargeBinary, comment="32-byte ORB descriptors")
    thumb_width: Mapped[int] = mapped_column(Integer)
    thumb: Mapped[bytes] = mapped_column(
        LargeBinary, comment="grey thumbnail (longest side 64) to check a matched region"
    )
    textlike: Mapped[float] = mapped_column(
        Float, comment="0..1, how much it looks like printed text (not matched above 0.6)"
    )


class ReviewDecision(Base):
    __tablename__ = "review_decisions"
    __table_args__ = (
        UniqueConstraint("cluster_key"),
        {"comment": "Keeper choices and skips made while reviewing (dedupdb serve)"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # By content, as not_duplicates: the decision holds while the cluster holds the same
    # pictures; a changed file or a new copy gives another key, and the cluster is shown again.
    cluster_key: Mapped[bytes] = mapped_column(
        LargeBinary(16), comment="BLAKE2b-128 of the members' sorted content hashes"
    )
    kind: Mapped[str] = mapped_column(String(16), comment="keep (the keepers listed) or skip")
    keepers: Mapped[str] = mapped_column(
        Text, comment="JSON [[content hash hex, path], ...]: the first is the keeper"
    )
    members: Mapped[int] = mapped_column(Integer, comment="how many files, to show")
    label: Mapped[str] = mapped_column(Text, comment="the keeper's path when decided, to show")
    created_at: Mapped[datetime] = mapped_column(DateTime)
