"""Defaults that the library and the command line share, in a module that imports nothing
heavy: the ``dedupdb`` command builds its options (and answers ``--help`` and ``--version``)
without loading SQLAlchemy, numpy or Pillow."""

from __future__ import annotations

from pathlib import Path

# The environment variable that names the database (a file path or a SQLAlchemy URL).
ENV_VAR = "DEDUPDB_DB"
# Images whose shorter side is smaller are recorded as skipped (``--min-resolution``): below
# this, hashes say nothing (1x1 spacers, favicons). Small pictures above it are indexed, and
# the report pairs them only with larger pictures (``match.SMALL_PICTURE``): a thumbnail is a
# copy of its picture, icons and emoji make no clusters of their own.
DEFAULT_MIN_RESOLUTION = 32
# A file whose decoding takes longer is recorded as failed (``--timeout``).
DEFAULT_TIMEOUT_S = 120.0
# The memory (MiB) a worker may take for one file beyond its own code (``--max-memory``): a
# file whose decoding needs more is recorded as too large instead of pushing the machine into
# swap or the kernel's out-of-memory killer. Enough for any JPEG (decoded at reduced scale)
# and for a PNG or TIFF of ~170 megapixels (8-bit RGB), Pillow's own decompression-bomb limit.
DEFAULT_MAX_MEMORY_MB = 1024


def default_database_path() -> Path:
    """Where the embedded database lives when neither --db nor DEDUPDB_DB says otherwise."""
    import platformdirs

    return Path(platformdirs.user_data_dir("dedupdb", appauthor=False)) / "dedupdb.sqlite"
