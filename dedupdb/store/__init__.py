"""The storage seam: every SQL statement, transaction and run lock of dedupdb lives here.

The stages outside this package receive and return typed records; they never see a session or
a row. ``engine`` opens the database (SQLite by default, PostgreSQL through the same code),
creating or upgrading its schema through Alembic; ``schema`` is the ORM model of the tables;
``locks`` decides which run holds the database; the other modules hold each stage's queries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import (
        HASH_PARAMS_KEY,
        Store,
        alembic_config,
        backup,
        create_db_engine,
        database_url,
        driver_rows,
        head_revision,
        migrations_dir,
        open_store,
        quick_head_revision,
        select_one,
        translate_operational_error,
    )
    from .locks import process_alive, running_apply, running_index

# Loaded on first use: a module of this package that needs no SQLAlchemy (a quick read-only
# look at a SQLite file before the workers fork) must not pay for importing it.
_LAZY = {
    **dict.fromkeys(
        [
            "HASH_PARAMS_KEY",
            "Store",
            "alembic_config",
            "backup",
            "create_db_engine",
            "database_url",
            "driver_rows",
            "head_revision",
            "migrations_dir",
            "open_store",
            "quick_head_revision",
            "select_one",
            "translate_operational_error",
        ],
        "engine",
    ),
    **dict.fromkeys(["process_alive", "running_apply", "running_index"], "locks"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "HASH_PARAMS_KEY",
    "Store",
    "alembic_config",
    "backup",
    "create_db_engine",
    "database_url",
    "driver_rows",
    "head_revision",
    "migrations_dir",
    "open_store",
    "process_alive",
    "quick_head_revision",
    "running_apply",
    "running_index",
    "select_one",
    "translate_operational_error",
]
