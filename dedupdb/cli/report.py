"""`dedupdb report`: clusters, keepers and why, on the terminal, as JSON, CSV or HTML."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from ..errors import DedupdbError
from ..walk import printable
from .base import (
    ProgressBar,
    cli,
    db_option,
    handle_errors,
    open_db,
    settings_text,
)


def _open_output(path: str) -> Any:
    """A text file to write (``-`` is stdout); a failure is one clear line."""
    if path == "-":
        return contextlib.nullcontext(sys.stdout)
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as err:
        raise DedupdbError(f"cannot write {path}: {err.strerror}") from err


@cli.command("report")
@db_option
@click.option("--html", "html_file", metavar="FILE", help="Write the HTML report to FILE.")
@click.option(
    "--json", "json_file", metavar="FILE", help="Write the JSON report to FILE (- for stdout)."
)
@click.option(
    "--csv", "csv_file", metavar="FILE", help="Write a CSV, one row per file (- for stdout)."
)
@click.option(
    "--hash",
    "hash_name",
    type=click.Choice(["phash", "dhash", "ahash", "whash"]),
    default="phash",
    show_default=True,
    help="Perceptual hash to compare.",
)
@click.option(
    "--threshold",
    type=click.IntRange(min=0),
    default=None,
    metavar="BITS",
    help="Largest Hamming distance that counts as a duplicate [default: tuned per hash].",
)
@click.option(
    "--second-hash",
    type=click.Choice(["phash", "dhash", "ahash", "whash", "none"]),
    default="dhash",
    show_default=True,
    help="A second hash whose matches (at its tuned threshold) are added: it finds copies "
    "the first misses (crops, watermarks). 'none': the first hash alone.",
)
@click.option(
    "--exact",
    is_flag=True,
    help="Byte-identical copies only (same content, whatever the name or date): no "
    "similar-looking pictures, so nothing to review but the keeper.",
)
@click.option("--no-rotations", is_flag=True, help="Do not match rotated or mirrored copies.")
@click.option("--no-crops", is_flag=True, help="Do not match cropped copies.")
@click.option(
    "--turned-crops",
    is_flag=True,
    help="Also match copies that were cropped and then turned or mirrored (a slower search).",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also match by local features (stored by `index --features`): heavy and off-centre "
    "crops, tilts, stickers, each verified by its geometry (slower). Pictures inside "
    "screenshots are found without it.",
)
@click.option(
    "--ssim",
    type=click.FloatRange(-1.0, 1.0),
    default=None,
    metavar="MIN",
    help="Verify near-duplicate pairs with SSIM and drop pairs below MIN (e.g. 0.8).",
)
@click.option(
    "--prefer",
    multiple=True,
    metavar="PATTERN",
    help="Keep copies whose path matches this glob (or folder name); repeatable.",
)
@click.option(
    "--avoid",
    multiple=True,
    metavar="PATTERN",
    help="Do not keep copies whose path matches this glob (or folder name); repeatable.",
)
@click.option(
    "--thumbnails",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    metavar="N",
    help="Embed previews in the HTML for the first N clusters (0: none).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    envvar="DASK_SCHEDULER_ADDRESS",
    default=None,
    help="Run the all-pairs search on the workers of this Dask scheduler (e.g. "
    "tcp://host:8786; env DASK_SCHEDULER_ADDRESS), partitioned into blocks of rows; the same "
    "report. Needs the [dask] extra.",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary on the terminal.")
@handle_errors
def report_command(
    db: str | None,
    html_file: str | None,
    json_file: str | None,
    csv_file: str | None,
    hash_name: str,
    threshold: int | None,
    second_hash: str,
    exact: bool,
    no_rotations: bool,
    no_crops: bool,
    turned_crops: bool,
    deep: bool,
    ssim: float | None,
    prefer: tuple[str, ...],
    avoid: tuple[str, ...],
    thumbnails: int,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Find duplicate and near-duplicate images in the database, choose the copy to keep in
    each cluster (and say why), and write the report as HTML, JSON or CSV. Nothing is
    changed on disk: `dedupdb apply` acts on a report.

    \b
    Examples:
      dedupdb report                                  # summary on the terminal
      dedupdb report --html report.html --json report.json
      dedupdb report --threshold 6 --ssim 0.8 --prefer '*/originals/*' --avoid Downloads
      dedupdb report --exact --html exact.html        # byte-identical copies only
      dedupdb report --csv - | less
      dedupdb report --deep --html report.html        # also heavy crops, tilts (index --features)
      dedupdb report --scheduler tcp://scheduler:8786  # the search on a Dask cluster
    """
    if not quiet and sys.stderr.isatty():  # a word at once, before loading the report's code
        click.echo("Finding duplicates among the indexed images ...", err=True)
    from ..render.csv_report import write_csv
    from ..render.html import make_thumbnails, render_html
    from ..render.json_report import write_json
    from ..report import ReportOptions, actionable, build_report, cluster_membership
    from ..store.reports import remember_report

    if exact and (threshold is not None or ssim is not None):
        other = "--threshold" if threshold is not None else "--ssim"
        raise click.UsageError(
            f"--exact and {other} cannot be used together: --exact compares file contents"
        )
    options = ReportOptions(
        exact=exact,
        hash=hash_name,
        threshold=threshold,
        rotations=not no_rotations,
        ssim=ssim,
        prefer=prefer,
        avoid=avoid,
        second_hash=None if second_hash == "none" else second_hash,
        crops=not no_crops,
        turned_crops=turned_crops,
        deep=deep,
    )
    store = open_db(db, create=False, reading=True)
    client = None
    try:
        if scheduler:  # the all-pairs search on a Dask cluster's workers (docs/scale-out.md)
            from ..distributed import open_client
            from ..distributed.search import searcher

            client = open_client(scheduler)
            result = build_report(store, options, searcher=searcher(client))
        else:
            result = build_report(store, options)
        remembered = remember_report(store, cluster_membership(result), actionable(result))
    finally:
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]
        store.close()
    if json_file:
        with _open_output(json_file) as out:
            write_json(result, out)
    if csv_file:
        with _open_output(csv_file) as out:
            write_csv(result, out)
    if html_file:
        bar = ProgressBar(enabled=not quiet and sys.stderr.isatty())
        previews = make_thumbnails(
            result,
            thumbnails,
            progress=lambda done, total: bar.show(done, total),
        )
        bar.close()
        with _open_output(html_file) as out:
            out.write(render_html(result, previews, thumbnail_clusters=thumbnails))
    if not quiet and "-" not in (json_file, csv_file):
        click.echo(format_report_summary(result))
        if not remembered:
            click.echo(
                "(the database is read-only: `apply` and `not-duplicate --cluster` cannot use "
                "this report)"
            )
        for name, path in (("HTML", html_file), ("JSON", json_file), ("CSV", csv_file)):
            if path:
                click.echo(f"Wrote the {name} report to {printable(path)}")


def format_report_summary(result: Any) -> str:
    from ..keeper_rules import human_bytes

    summary, settings = result.summary, result.settings
    lines = [
        f"Compared {summary.images:,} images ({settings_text(settings)})",
        f"  clusters     {summary.clusters:>9,}   "
        f"({summary.exact_clusters:,} entirely byte-identical)",
        f"  duplicates   {summary.duplicates:>9,}   "
        + (
            "(all byte-identical)"
            if settings.get("exact")
            else f"({summary.exact_duplicates:,} byte-identical to another copy: "
            "`--exact` for those only)"
        ),
        f"  reclaimable  {human_bytes(summary.reclaimable_bytes):>9}",
    ]
    if summary.excluded_pairs:
        lines.append(f"  pairs you marked not duplicates: {summary.excluded_pairs:,} (left out)")
    if summary.failures:
        lines.append(
            f"  {summary.failures:,} file{'s' if summary.failures != 1 else ''} could not be "
            "indexed (`dedupdb status --errors`)"
        )
    if not summary.images:
        lines.append("Nothing indexed yet: dedupdb index FOLDER")
    for cluster in result.clusters[:5]:
        keeper = next(m for m in cluster.members if m.keeper)
        lines.append(
            f"  #{cluster.id}: {len(cluster.members)} files, "
            f"{human_bytes(cluster.reclaimable_bytes)} reclaimable; keep {printable(keeper.path)} "
            f"({printable('; '.join(cluster.reasons))})"
        )
    if len(result.clusters) > 5:
        lines.append(f"  ... and {len(result.clusters) - 5:,} more clusters (--html FILE)")
    return "\n".join(lines)
