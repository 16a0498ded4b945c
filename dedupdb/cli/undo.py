"""`dedupdb undo`: reverse an apply run."""

from __future__ import annotations

import json
import sys

import click

from ..walk import printable
from .base import (
    EXIT_PROBLEMS,
    cli,
    db_option,
    handle_errors,
    open_db,
)


@cli.command("undo")
@click.argument("run", required=False, type=click.IntRange(min=1))
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def undo_command(run: int | None, db: str | None, as_json: bool) -> None:
    """Reverse an apply run (the latest one by default): moved files go back where they were,
    links are replaced by the original files, trashed files come back from the trash. Files
    that changed since, or whose place is taken, are left alone and listed. Deleted files
    cannot come back.

    \b
    Examples:
      dedupdb undo
      dedupdb history && dedupdb undo 3
    """
    from ..actions import undo

    store = open_db(db, create=False)
    try:
        result = undo(store, run)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(
            f"Run {result.run_id}: restored {len(result.restored):,} files, "
            f"{len(result.skipped):,} left alone."
        )
        for skip in result.skipped:
            click.echo(f"  ! {printable(skip.path)}: {printable(skip.reason)}")
    if result.skipped:
        sys.exit(EXIT_PROBLEMS)
