"""`dedupdb backup`: a consistent copy of a SQLite database."""

from __future__ import annotations

import click

from ..walk import printable
from .base import (
    cli,
    db_option,
    handle_errors,
    open_db,
)


@cli.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, writable=True, path_type=str))
@db_option
@handle_errors
def backup_command(target: str, db: str | None) -> None:
    """Copy the database to TARGET, consistently, even while an index run is writing to it
    (SQLite's online backup). For PostgreSQL, use pg_dump.

    \b
    Examples:
      dedupdb backup ~/dedupdb-$(date +%F).sqlite
      dedupdb backup /backups/dedupdb.sqlite --db /srv/dedupdb.sqlite
    """
    from pathlib import Path

    from ..store import backup

    store = open_db(db, create=False, reading=True)
    try:
        written = backup(store, Path(target))
    finally:
        store.close()
    click.echo(
        f"Backed up {printable(str(store.sqlite_path))} to {printable(str(written))} "
        f"({written.stat().st_size:,} bytes)."
    )
