"""`dedupdb prune`: forget the images marked missing."""

from __future__ import annotations

import click

from .base import (
    cli,
    db_option,
    handle_errors,
    open_db,
)


@cli.command("prune")
@db_option
@click.argument("root", required=False, type=click.Path(file_okay=False, path_type=str))
@handle_errors
def prune_command(db: str | None, root: str | None) -> None:
    """Forget images that `index` marked missing (in ROOT, or everywhere). Files on disk are
    not touched. Missing images are kept until you prune, so an unplugged drive does not wipe
    its part of the index.

    \b
    Examples:
      dedupdb prune
      dedupdb prune /mnt/old-drive/photos
    """
    from ..library import prune

    store = open_db(db, create=False)
    try:
        removed = prune(store, root)
    finally:
        store.close()
    click.echo(f"Forgot {removed:,} missing image{'s' if removed != 1 else ''}.")
