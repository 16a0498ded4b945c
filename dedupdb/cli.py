"""The ``dedupdb`` command: parse options, call the library, print. Nothing else knows the
terminal. Library errors (``DedupdbError``) become one line on stderr and exit code 1 here;
anything unexpected becomes one line too (``--debug`` shows the traceback).

Exit codes: 0 success (duplicates found or not), 1 some files could not be processed or an
action was refused, 2 usage errors, 130 interrupted (Ctrl+C or SIGTERM).
Colours only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__
from .errors import DedupdbError
from .index import DEFAULT_MIN_RESOLUTION, IndexOptions, IndexSummary, Progress, index
from .status import Status, prune, status
from .store import ENV_VAR, Store, default_database_path, open_store

F = TypeVar("F", bound=Callable[..., Any])

EXIT_PROBLEMS = 1
EXIT_INTERRUPTED = 130


def db_option(func: F) -> F:
    return click.option(
        "--db",
        envvar=ENV_VAR,
        metavar="PATH|URL",
        help=f"Database file or SQLAlchemy URL [env {ENV_VAR}; default: {default_database_path()}]",
    )(func)


def handle_errors(func: F) -> F:
    """Turn library errors into one clear line (the traceback only with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DedupdbError as err:
            if _debug():
                raise
            click.secho(f"Error: {err}", fg="red", err=True)  # message (hint)
            sys.exit(EXIT_PROBLEMS)

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def _open(db: str | None) -> Store:
    return open_store(db)


EPILOG = """\b
Exit codes:
  0  success, whether duplicates were found or not
  1  some files could not be processed, or an action was refused (an error)
  2  usage error (unknown option, missing argument)
  130  interrupted (Ctrl+C, SIGTERM): run the same command again to continue

\b
Colours only on a terminal, never with NO_COLOR set. Shell completion (bash, zsh, fish):
  eval "$(_DEDUPDB_COMPLETE=bash_source dedupdb)"   # in ~/.bashrc
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="dedupdb")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find duplicate and near-duplicate images, remember them in a database, and tell you
    which copy to keep.

    \b
    Examples:
      dedupdb index ~/Pictures          # index (again: only new or changed files)
      dedupdb status                    # what the database holds
      dedupdb index /mnt/nas/photos --db /mnt/nas/dedupdb.sqlite
      dedupdb backup ~/dedupdb-backup.sqlite
    """
    if os.environ.get("NO_COLOR"):
        ctx.color = False


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
    help="Decoding processes [default: one per CPU core].",
)
@click.option(
    "--hash-size",
    type=click.Choice(["8", "16"]),
    default=None,
    help="Perceptual hash size: 8 (64-bit) or 16 (256-bit) [default: the database's, else 8].",
)
@click.option("--rehash", is_flag=True, help="Recompute hashes after changing --hash-size.")
@click.option(
    "--retry-errors", is_flag=True, help="Retry files that failed before, even unchanged."
)
@click.option(
    "--min-resolution",
    type=click.IntRange(min=0),
    default=DEFAULT_MIN_RESOLUTION,
    show_default=True,
    metavar="PX",
    help="Skip images whose shorter side is smaller.",
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
    retry_errors: bool,
    min_resolution: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Index the images under ROOT: new and changed files are read, decoded and hashed once;
    unchanged ones are skipped without being opened. Safe to interrupt: run it again to
    continue where it stopped.

    \b
    Examples:
      dedupdb index ~/Pictures
      dedupdb index /photos --exclude '@eaDir' --exclude '*.tmp' --workers 4
      dedupdb index /photos --json > summary.json
    """
    options = IndexOptions(
        excludes=exclude,
        follow_symlinks=follow_symlinks,
        workers=workers,
        hash_size=int(hash_size) if hash_size else None,
        rehash=rehash,
        retry_errors=retry_errors,
        min_resolution=min_resolution,
    )
    store = _open(db)
    bar = _ProgressBar(enabled=not quiet and not as_json and sys.stderr.isatty())
    try:
        summary = index(store, os.fsencode(root), options, progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        click.echo(
            "Interrupted: everything indexed so far is saved; run the same command "
            "again to continue.",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    finally:
        bar.close()
        store.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(format_summary(summary))
    if summary.failed:
        sys.exit(EXIT_PROBLEMS)


class _ProgressBar:
    """A tqdm bar on stderr: files/s, ETA, errors so far. Created on the first event."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def update(self, event: Progress) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, unit="file", dynamic_ncols=True, file=sys.stderr)
        self.bar.n = event.done
        self.bar.set_postfix(errors=event.failed, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_summary(summary: IndexSummary) -> str:
    lines = [
        f"Indexed {summary.root} in {summary.seconds:.1f} s",
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
    for failure in summary.failures[:10]:
        lines.append(f"  ! {failure['path']}: {failure['reason']}")
    if summary.failed > 10:
        lines.append(f"  ... and {summary.failed - 10} more (`dedupdb status --errors`)")
    return "\n".join(lines)


@cli.command("status")
@db_option
@click.option("--errors", "show_errors", is_flag=True, help="List the files that failed.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@handle_errors
def status_command(db: str | None, show_errors: bool, as_json: bool) -> None:
    """Show the indexed folders, image and error counts, and the database's size and schema.

    \b
    Examples:
      dedupdb status
      dedupdb status --errors
      dedupdb status --json
    """
    store = _open(db)
    try:
        result = status(store)
        errors = _failures(store) if show_errors else []
    finally:
        store.close()
    if as_json:
        data = result.to_dict()
        if show_errors:
            data["errors"] = errors
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_status(result))
    for error in errors:
        click.echo(f"  {error['kind']}: {error['path']}: {error['reason']}")


def _failures(store: Store) -> list[dict[str, str]]:
    from sqlalchemy import select

    from .models import Failure, Root

    with store.session() as session:
        rows = session.execute(
            select(Root.display_path, Failure.display_path, Failure.kind, Failure.reason)
            .join(Root, Root.id == Failure.root_id)
            .order_by(Root.display_path, Failure.display_path)
        )
        return [
            {"root": r, "path": os.path.join(r, p), "kind": k, "reason": why}
            for r, p, k, why in rows
        ]


def format_status(result: Status) -> str:
    size = f"{result.size_bytes / 1e6:,.1f} MB" if result.size_bytes is not None else "n/a"
    params = result.hash_params or {}
    lines = [
        f"Database: {result.database} ({size})",
        f"Schema:   {result.schema_version}"
        + ("" if result.schema_version == result.schema_head else f" (head {result.schema_head})"),
        f"Hashes:   size {params.get('hash_size', '-')}, version {params.get('version', '-')}",
        f"Images:   {result.images:,}",
    ]
    if not result.roots:
        lines.append("No folders indexed yet: dedupdb index FOLDER")
    for root in result.roots:
        lines.append(
            f"  {root.path}: {root.present:,} images, {root.missing:,} missing, "
            f"{root.failed:,} failed, {root.skipped:,} skipped "
            f"(last indexed {root.last_indexed_at or 'never (interrupted)'})"
        )
    return "\n".join(lines)


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
    store = _open(db)
    try:
        removed = prune(store, root)
    finally:
        store.close()
    click.echo(f"Forgot {removed:,} missing image{'s' if removed != 1 else ''}.")


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

    from .store import backup

    store = _open(db)
    try:
        written = backup(store, Path(target))
    finally:
        store.close()
    click.echo(f"Backed up {store.sqlite_path} to {written} ({written.stat().st_size:,} bytes).")


def _terminate(signum: int, _frame: Any) -> None:
    """SIGTERM (docker stop, systemd, Kubernetes) interrupts like Ctrl+C: work is saved."""
    signal.signal(signum, signal.SIG_DFL)
    raise KeyboardInterrupt


def main() -> None:
    """The console script: the CLI, with SIGTERM handled and unexpected errors in one line."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli(prog_name="dedupdb")
    except Exception as err:  # a bug or an unforeseen condition; the library's are handled
        if "--debug" in sys.argv[1:] or os.environ.get("DEDUPDB_DEBUG"):
            raise
        where = traceback.extract_tb(err.__traceback__)[-1]
        click.secho(
            f"Error: unexpected {type(err).__name__}: {err} (at {os.path.basename(where.filename)}"
            f":{where.lineno}; run with --debug for the traceback, and please report it)",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_PROBLEMS)
