"""Defaults that the library and the command line share, in a module that imports nothing
heavy: the ``dedupdb`` command builds its options (and answers ``--help`` and ``--version``)
without loading SQLAlchemy, numpy or Pillow."""

from __future__ import annotations

from pathlib import Path

# The environment variable that names the database (a file path or a SQLAlchemy URL).
ENV_VAR = "DEDUPDB_DB"
# Images whose shorter side is smaller are recorded as skipped (``--min-resolution``).
DEFAULT_MIN_RESOLUTION = 100
# A file whose decoding takes longer is recorded as failed (``--timeout``).
DEFAULT_TIMEOUT_S = 120.0


def default_database_path() -> Path:
    """Where the embedded database lives when neither --db nor DEDUPDB_DB says otherwise."""
    import platformdirs

    return Path(platformdirs.user_data_dir("dedupdb", appauthor=False)) / "dedupdb.sqlite"
