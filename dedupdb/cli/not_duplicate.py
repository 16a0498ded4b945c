"""`dedupdb not-duplicate`: pictures the user says are not duplicates."""

from __future__ import annotations

import click

from ..walk import printable
from .base import (
    cli,
    db_option,
    handle_errors,
    open_db,
)


@cli.command("not-duplicate")
@db_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--cluster",
    "cluster_ids",
    multiple=True,
    type=int,
    metavar="ID",
    help="A cluster number from the last report (repeatable).",
)
@click.option("--forget", is_flag=True, help="Undo: forget the decision for these images.")
@click.option("--list", "list_all", is_flag=True, help="List the pairs marked so far.")
@handle_errors
def not_duplicate_command(
    db: str | None, paths: tuple[str, ...], cluster_ids: tuple[int, ...], forget: bool,
    list_all: bool,
) -> None:  # fmt: skip
    """Tell dedupdb that some images are not duplicates of each other, so later reports
    leave them apart. Give two or more indexed files, or a cluster number from the last
    report. The decision follows the pictures' content (moves and renames keep it).

    \b
    Examples:
      dedupdb not-duplicate ~/Pictures/a.jpg ~/Pictures/b.jpg
      dedupdb not-duplicate --cluster 3
      dedupdb not-duplicate --forget --cluster 3
      dedupdb not-duplicate --list
    """
    from ..decisions import (
        forget_not_duplicates,
        image_ids_for_paths,
        last_cluster,
        list_not_duplicates,
        mark_not_duplicates,
    )

    if list_all and (paths or cluster_ids or forget):
        given = "PATHS" if paths else "--cluster" if cluster_ids else "--forget"
        raise click.UsageError(f"--list and {given} cannot be used together")
    store = open_db(db, create=False, reading=list_all)
    try:
        if list_all:
            for decision in list_not_duplicates(store):
                click.echo(
                    f"{decision.created_at}  {printable(decision.path_a)}  <->  "
                    f"{printable(decision.path_b)}"
                )
            return
        groups = [last_cluster(store, cid) for cid in cluster_ids]
        if paths:
            groups.append(image_ids_for_paths(store, paths))
        if not groups:
            raise click.UsageError("give two or more PATHS, --cluster ID, or --list")
        for ids in groups:
            if forget:
                count = forget_not_duplicates(store, ids)
                click.echo(f"Forgot {count:,} pair{'s' if count != 1 else ''}.")
            else:
                count = mark_not_duplicates(store, ids)
                click.echo(
                    f"Marked {len(ids)} images as not duplicates "
                    f"({count:,} new pair{'s' if count != 1 else ''}); "
                    "later reports keep them apart."
                )
    finally:
        store.close()
