"""`dedupdb index`: read and fingerprint a folder into the database."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING

import click

from ..defaults import (
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_MIN_RESOLUTION,
    DEFAULT_TIMEOUT_S,
)
from ..walk import printable
from .base import (
    EXIT_UNREADABLE,
    ProgressBar,
    cli,
    db_option,
    exit_interrupted,
    handle_errors,
    open_db,
)

if TYPE_CHECKING:
    from ..executor import Executor
    from ..fingerprint import Result, Task
    from ..indexing import IndexSummary


@cli.command("index")
@click.argument("root", type=click.Path(file_okay=False, path_type=str))
@db_option
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Skip paths matching GLOB "
    "(relative path or file/folder name; repeatable), e.g. --exclude '.thumbnails'.",
)
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links (loop-safe).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Decoding processes [default: one per CPU core this process may use].",
)
@click.option(
    "--hash-size",
    type=click.Choice(["8", "16"]),
    default=None,
    help="Perceptual hash size: 8 (64-bit) or 16 (256-bit) [default: the database's, else 8].",
)
@click.option(
    "--rehash",
    is_flag=True,
    help="Recompute every image's hashes and signals (after changing --hash-size, or to bring "
    "images indexed by an older dedupdb up to date).",
)
@click.option(
    "--features",
    is_flag=True,
    help="Also store local features (ORB keypoints) of new and changed files, for `report "
    "--deep` (heavy crops, tilts; indexing takes longer). Add --rehash to give them to files "
    "indexed before.",
)
@click.option(
    "--retry-errors", is_flag=True, help="Retry files that failed before, even unchanged."
)
@click.option(
    "--break-lock",
    is_flag=True,
    help="Take over from an index run of another machine or container that was stopped "
    "without finishing (the busy error names it).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Record a file as failed when decoding it takes longer (0: no limit).",
)
@click.option(
    "--max-memory",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_MEMORY_MB,
    show_default=True,
    metavar="MIB",
    help="Memory a worker may take for one file; a file that needs more is recorded as too "
    "large (0: no limit).",
)
@click.option(
    "--min-resolution",
    type=click.IntRange(min=0),
    default=DEFAULT_MIN_RESOLUTION,
    show_default=True,
    metavar="PX",
    help="Skip images whose shorter side is smaller (1x1 spacers, favicons). Pictures under "
    "100 px (thumbnails, icons) are indexed but reported only as copies of a larger picture.",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Index ROOT even when it is empty although images were indexed there (they are then "
    "marked missing). Without it, dedupdb refuses: an empty folder is usually a drive that is "
    "not mounted.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit with code 3 when some files could not be read (for scripts that must notice "
    "them). Without it such files are recorded, listed, and the run exits 0.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    envvar="DASK_SCHEDULER_ADDRESS",
    default=None,
    help="Decode on the workers of this Dask scheduler (e.g. tcp://host:8786; env "
    "DASK_SCHEDULER_ADDRESS) instead of local processes. Every worker must see ROOT at the "
    "same path. Needs the [dask] extra.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def index_command(
    root: str,
    db: str | None,
    exclude: tuple[str, ...],
    follow_symlinks: bool,
    workers: int | None,
    hash_size: str | None,
    rehash: bool,
    features: bool,
    retry_errors: bool,
    break_lock: bool,
    timeout: float,
    max_memory: int,
    min_resolution: int,
    allow_empty: bool,
    strict: bool,
    scheduler: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Index the images under ROOT: new and changed files are read, decoded and hashed once;
    unchanged ones are skipped without being opened. Safe to interrupt: run it again to
    continue where it stopped.

    Files that cannot be read (truncated, damaged, not images) are recorded with the reason
    and listed; the run still succeeds (exit 0) unless --strict is given (exit 3).
    `dedupdb status --errors` lists them later; --retry-errors tries them again.

    \b
    Examples:
      dedupdb index ~/Pictures
      dedupdb index /photos --exclude '@eaDir' --exclude '*.tmp' --workers 4
      dedupdb index /photos --json > summary.json
      dedupdb index /photos --strict || echo "some files could not be read"
      dedupdb index /photos --features   # local features, for `report --deep`
      dedupdb index /mnt/photos --scheduler tcp://scheduler:8786   # on a Dask cluster
    """
    from ..walk import absolute_root
    from ..workers import start_early

    absolute_root(root)  # before anything is started or created (no database for a typo)

    # The workers start first when the run will have files to decode: each loads and warms up
    # the decode and hash code while this process loads the database code and opens it.
    pool: Executor[Task, Result] | None
    if scheduler:  # a Dask cluster's workers decode (docs/scale-out.md)
        from ..distributed import connect

        pool = connect(scheduler)
    else:
        pool = start_early(workers, timeout or None, db, root, max_memory or None)
    with pool if pool is not None else contextlib.nullcontext():
        from ..indexing import IndexOptions, index

        options = IndexOptions(
            excludes=exclude,
            follow_symlinks=follow_symlinks,
            workers=workers,
            hash_size=int(hash_size) if hash_size else None,
            rehash=rehash,
            retry_errors=retry_errors,
            min_resolution=min_resolution,
            break_lock=break_lock,
            timeout=timeout or None,
            max_memory=max_memory or None,
            allow_empty=allow_empty,
            features=features,
        )
        store = open_db(db)
        bar = ProgressBar(enabled=not quiet and not as_json and sys.stderr.isatty())
        try:
            summary = index(store, os.fsencode(root), options, progress=bar.update, executor=pool)
        except KeyboardInterrupt:
            exit_interrupted(
                bar,
                "Interrupted: everything indexed so far is saved; run the same command "
                "again to continue.",
            )
        finally:
            bar.close()
            store.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(format_summary(summary))
    if summary.failed and strict:
        sys.exit(EXIT_UNREADABLE)


def format_summary(summary: IndexSummary) -> str:
    lines = [
        f"Indexed {printable(summary.root)} in {summary.seconds:.1f} s",
        f"  new        {summary.new:>9,}",
        f"  changed    {summary.changed:>9,}",
        f"  moved      {summary.moved:>9,}",
        f"  unchanged  {summary.unchanged:>9,}",
        f"  missing    {summary.missing:>9,}   (kept; `dedupdb prune` forgets them)",
        f"  skipped    {summary.skipped:>9,}",
        f"  failed     {summary.failed:>9,}",
    ]
    if summary.known_bad:
        lines.append(
            f"  known bad  {summary.known_bad:>9,}   (failed before, unchanged; --retry-errors)"
        )
    if summary.noted:
        lines.append(f"  with notes {summary.noted:>9,}   (indexed; the decoder warned: --json)")
    for failure in summary.failures[:10]:
        lines.append(f"  ! {printable(failure['path'])}: {printable(failure['reason'])}")
    if summary.failed > 10:
        lines.append(f"  ... and {summary.failed - 10} more (`dedupdb status --errors`)")
    if summary.failed:
        lines.append(
            f"{summary.failed:,} file{'s' if summary.failed != 1 else ''} could not be read: "
            "recorded and left out of reports (list: `dedupdb status --errors`)."
        )
    return "\n".join(lines)
