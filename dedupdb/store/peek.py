"""Quick read-only looks at a SQLite database, with Python's own sqlite3 module and without
SQLAlchemy: for a command that decides something before it loads the database code (``dedupdb
index`` forking its workers first). Anything unusual answers "cannot tell" (None)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..defaults import ENV_VAR, default_database_path


def knows_root(db: str | None, root: bytes) -> bool | None:
    """Whether the database named by ``db`` (a path, or None: $DEDUPDB_DB or the default) has
    indexed the folder ``root`` (absolute). False for a database that does not exist yet;
    None when it cannot tell: a URL, an unreadable file, another schema."""
    value = db if db is not None else os.environ.get(ENV_VAR) or ""
    if "://" in value:
        return None
    database = Path(value).expanduser() if value else default_database_path()
    if not database.exists():
        return False
    try:
        connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        found = connection.execute("SELECT 1 FROM roots WHERE path = ?", (root,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return found is not None
