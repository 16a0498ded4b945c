"""`dedupdb metrics`: the figures for Prometheus."""

from __future__ import annotations

import click

from .base import (
    cli,
    db_option,
    handle_errors,
    open_db,
    stuck_after_option,
)


@cli.command("metrics")
@db_option
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=str),
    help="Write to FILE atomically (for node_exporter's textfile collector: *.prom) instead "
    "of printing.",
)
@stuck_after_option
@handle_errors
def metrics_command(db: str | None, output: str | None, stuck_after: float) -> None:
    """Print the database's figures in Prometheus' text format: images, failures, duplicates
    and reclaimable bytes, and each kind of run's state, files, rate and duration. See
    DEPLOYMENT.md for scraping and alerting.

    \b
    Examples:
      dedupdb metrics
      dedupdb metrics --output /var/lib/node_exporter/textfile/dedupdb.prom
    """
    from ..metrics import metrics_text, write_metrics

    store = open_db(db, create=False)
    try:
        if output is not None:
            write_metrics(store, output, stuck_after=stuck_after)
        else:
            click.echo(metrics_text(store, stuck_after=stuck_after), nl=False)
    finally:
        store.close()
