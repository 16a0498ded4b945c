"""`dedupdb history`: the apply runs."""

from __future__ import annotations

import json

import click

from ..walk import printable
from .base import (
    cli,
    db_option,
    handle_errors,
    open_db,
    size_text,
)


@cli.command("history")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@handle_errors
def history_command(db: str | None, as_json: bool) -> None:
    """List apply runs, newest first: what they did, to how many files, and their state.

    \b
    Examples:
      dedupdb history
      dedupdb history --json
    """
    from dataclasses import asdict

    from ..actions import history

    store = open_db(db, create=False, reading=True)
    try:
        runs = history(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([asdict(r) for r in runs], indent=2))
        return
    if not runs:
        click.echo("No apply runs yet.")
        return
    click.echo(
        f"{'RUN':>4}  {'STARTED':<{len(runs[0].started_at)}}  {'ACTION':<8} {'STATE':<13} FILES"
    )
    for r in runs:
        line = (
            f"{r.id:>4}  {r.started_at}  {r.action:<8} {r.status:<13} {r.done:,} done "
            f"({size_text(r.bytes)}), {r.skipped:,} skipped"
        )
        if r.undone:
            line += f", {r.undone:,} undone"
        if r.planned:
            line += f", {r.planned:,} unfinished"
        if r.quarantine:
            line += f"  -> {printable(r.quarantine)}"
        click.echo(line)
