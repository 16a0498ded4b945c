"""The fingerprint stage's records: what it is given and what it returns. Plain data that
imports nothing heavy (no numpy, Pillow or SQLAlchemy): the indexing process builds tasks and
reads results without loading the decoders, and every record pickles, to cross a process or a
network to wherever an executor runs the work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..defaults import DEFAULT_MIN_RESOLUTION
from ..hashparams import HashParams
from ..walk import FileEntry


@dataclass(frozen=True)
class FingerprintSettings:
    """What decides a fingerprint besides the bytes."""

    hash_size: int = 8  # 8: 64-bit hashes, 16: 256-bit
    min_resolution: int = DEFAULT_MIN_RESOLUTION  # a smaller picture is skipped, not hashed
    features: bool = False  # also extract local features (``index --features``)

    @property
    def params(self) -> HashParams:
        return HashParams(self.hash_size)


@dataclass(frozen=True)
class PackedFeatures:
    """A picture's local features (``features.LocalFeatures``) as stored: one row per content
    (``features.pack``; ``features.unpack`` reads them back)."""

    params: str
    width: int
    height: int
    count: int
    points: bytes
    descriptors: bytes
    thumb_width: int
    thumb: bytes
    textlike: float


class Fingerprint(NamedTuple):
    """Everything stored about a file's content (not its path or stat): what the file says
    about itself, its perceptual hashes and quality signals. A named tuple: it crosses a pipe
    for every file, and the store binds its fields in order."""

    content_hash: bytes
    width: int
    height: int
    content_width: int
    content_height: int
    format: str
    mode: str
    bit_depth: int
    lossless: bool
    frames: int
    orientation: int
    taken_at: str | None
    camera_make: str | None
    camera_model: str | None
    exif_tags: int
    note: str | None
    hash_size: int
    phash: bytes
    dhash: bytes
    ahash: bytes
    whash: bytes
    crop_phash: bytes | None
    crop_colour: bytes | None
    sharpness: float
    low_information: bool
    colour: bytes
    thumb: bytes
    jpeg_quant: bytes | None
    dct_sample: bytes | None
    # ``finehash.compute``: finer hashes that tell look-alike layouts apart (pages of one
    # template, product shots of one outline); None for rows indexed before it existed.
    fine_hash: bytes | None = None
    # A picture shown inside this one, as in a phone screenshot (``inner.pack``); None when
    # there is none.
    inner_picture: bytes | None = None
    # Stored in a table of their own, by content; None unless the settings ask for them.
    local_features: PackedFeatures | None = None


# The fields of a fingerprint that are columns of the image's row.
IMAGE_FIELDS: tuple[str, ...] = Fingerprint._fields[:-1]


@dataclass(frozen=True)
class Rejected:
    """Bytes that give no fingerprint: not a picture that can be decoded (``reason`` says why
    in words a user understands; ``out_of_memory``: the decoder ran out of memory), or one
    deliberately left out (``skipped``: below the minimum resolution)."""

    reason: str
    skipped: bool = False
    out_of_memory: bool = False


@dataclass(frozen=True)
class Task:
    """A file to read, hash and fingerprint. ``known``: the 8-byte prefixes of the stored
    content hashes of files of this size (a move or an exact copy, recognised without decoding
    once the file is hashed); empty for most files, which are then read once, hashing as they
    decode."""

    root: bytes
    entry: FileEntry
    settings: FingerprintSettings = FingerprintSettings()
    known: frozenset[bytes] = frozenset()


@dataclass(frozen=True)
class Indexed:
    """A fingerprinted file: ``entry`` as stat'ed when it was read."""

    entry: FileEntry
    fingerprint: Fingerprint


@dataclass(frozen=True)
class KnownContent:
    """Bytes the database already holds (a move or an exact copy): nothing was decoded."""

    entry: FileEntry
    content_hash: bytes


@dataclass(frozen=True)
class NotIndexed:
    """A file recorded in the failures table: unreadable (failed) or deliberately not indexed
    (``skipped``, e.g. below --min-resolution)."""

    entry: FileEntry
    reason: str
    skipped: bool = False


Result = Indexed | KnownContent | NotIndexed
