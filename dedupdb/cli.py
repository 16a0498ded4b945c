"""The ``dedupdb`` command: parse options, call the library, print. Nothing else knows the
terminal. Library errors (``DedupdbError``) become one line on stderr and exit code 1 here;
anything unexpected becomes one line too (``--debug`` shows the traceback).

Exit codes: 0 success (duplicates found or not; an index run whose unreadable files were
recorded and listed is a success), 1 an error or a refused action, 2 usage errors, 3 ``index
--strict`` when some files could not be read, 130 interrupted (Ctrl+C or SIGTERM).
Colours only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from .defaults import (
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_MIN_RESOLUTION,
    DEFAULT_TIMEOUT_S,
    ENV_VAR,
    default_database_path,
)
from .errors import DedupdbError
from .walk import printable  # every name or message printed for people goes through it

if TYPE_CHECKING:
    from .executor import Executor
    from .index import IndexSummary, Progress
    from .progress import RunProgress
    from .status import Status
    from .store import Store
    from .workers import Result, Task

# Each command imports the library modules it uses when it runs: `dedupdb --help` and
# `--version` then start in a few hundredths of a second, and `dedupdb status` without numpy.

F = TypeVar("F", bound=Callable[..., Any])

EXIT_PROBLEMS = 1
EXIT_UNREADABLE = 3  # `index --strict`: the run completed, but some files could not be read
EXIT_INTERRUPTED = 130


class _DbOption(click.Option):
    """``--db``, whose help names the default database's path when the help is shown (finding
    it loads platformdirs, which every other use of the command can do without)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = (
            f"Database file or SQLAlchemy URL [env {ENV_VAR}; default: {default_database_path()}]"
        )
        return super().get_help_record(ctx)


def db_option(func: F) -> F:
    return click.option(
        "--db",
        cls=_DbOption,
        envvar=ENV_VAR,
        metavar="PATH|URL",
        help=f"Database file or SQLAlchemy URL [env {ENV_VAR}]",
    )(func)


def stuck_after_option(func: F) -> F:
    """`--stuck-after` for `status --check-stuck` and `metrics`: one threshold, one env var."""
    return click.option(
        "--stuck-after",
        type=click.FloatRange(min=1),
        default=900.0,
        show_default=True,
        envvar="DEDUPDB_STUCK_AFTER",
        metavar="SECONDS",
        help="A running run with no progress for this long counts as stuck "
        "[env DEDUPDB_STUCK_AFTER].",
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
            click.secho(f"Error: {printable(str(err))}", fg="red", err=True)  # message (hint)
            sys.exit(EXIT_PROBLEMS)

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def _open(db: str | None, *, create: bool = True, reading: bool = False) -> Store:
    """Open the database; only ``index`` makes one where there is none (``create``). A command
    that only reads (``reading``) opens a database it cannot write read-only, and says so."""
    from .store import open_store

    store = open_store(db, create=create, reading=reading)
    if store.read_only:
        click.echo(f"Note: {printable(store.read_only)}.", err=True)
    _started()
    return store


# Set by ``main`` while the command starts: the garbage collector is paused meanwhile.
_starting = False


def _started() -> None:
    """The command has loaded its modules (each command imports them before it opens the
    database): resume the garbage collector that ``main`` paused, leaving out of all future
    collections what start-up made (``gc.freeze``): modules, classes, SQLAlchemy's tables.

    Importing SQLAlchemy, numpy and Pillow creates a few hundred thousand objects, none of them
    garbage, and the collector ran over them again and again as they were made: about 15% of
    the start-up's CPU time. Frozen, they are also never written to by a worker's collector, so
    forked workers keep sharing their memory pages with this process.
    """
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
        gc.enable()


EPILOG = """\b
Exit codes:
  0  success, whether duplicates were found or not; an index run that
     could not read some files (recorded, listed, skipped) succeeded too
  1  an error, or an action that was refused or skipped files
  2  usage error (unknown option, missing argument, options that conflict)
  3  `index --strict` only: the run completed, but some files could not
     be read (`dedupdb status --errors` lists them)
  130  interrupted (Ctrl+C, SIGTERM): run the same command again to continue

\b
Colours only on a terminal, never with NO_COLOR set. Shell completion (bash, zsh, fish):
  eval "$(_DEDUPDB_COMPLETE=bash_source dedupdb)"   # in ~/.bashrc
"""


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from ._version import __version__  # reading the package metadata: only when asked

    click.echo(f"dedupdb, version {__version__}", color=ctx.color)
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find duplicate and near-duplicate images, remember them in a database, and tell you
    which copy to keep. Nothing on disk changes until you run `apply --yes`, and every
    apply can be undone.

    \b
    Workflow:
      1. dedupdb index ~/Pictures                 # read and fingerprint (again: only new files)
      2. dedupdb report --html report.html        # clusters, keepers and why; open the HTML
      3. dedupdb apply                            # the plan for the report you just made
         dedupdb apply --yes                      # do it: duplicates go to a quarantine folder
      4. dedupdb undo                             # put everything back

    \b
    More examples:
      dedupdb report --prefer Originals --avoid Downloads --html report.html
      dedupdb report --exact                      # byte-identical copies only
      dedupdb status --errors                     # files that could not be read
      dedupdb index /mnt/nas/photos --db /mnt/nas/dedupdb.sqlite
      dedupdb history                             # apply runs, for `undo RUN`
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
    help="Skip images whose shorter side is smaller.",
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
    from .walk import absolute_root
    from .workers import start_early

    absolute_root(root)  # before anything is started or created (no database for a typo)

    # The workers start first when the run will have files to decode: each loads and warms up
    # the decode and hash code while this process loads the database code and opens it.
    pool: Executor[Task, Result] | None
    if scheduler:  # a Dask cluster's workers decode (docs/scale-out.md)
        from .distributed import connect

        pool = connect(scheduler)
    else:
        pool = start_early(workers, timeout or None, db, root, max_memory or None)
    with pool if pool is not None else contextlib.nullcontext():
        from .index import IndexOptions, index

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
        store = _open(db)
        bar = _ProgressBar(enabled=not quiet and not as_json and sys.stderr.isatty())
        try:
            summary = index(store, os.fsencode(root), options, progress=bar.update, pool=pool)
        except KeyboardInterrupt:
            _exit_interrupted(
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


def _exit_interrupted(bar: _ProgressBar, message: str) -> NoReturn:
    """Clear the progress bar, say what was kept and how to go on, exit 130."""
    bar.close()
    click.echo(message, err=True)
    sys.exit(EXIT_INTERRUPTED)


class _ProgressBar:
    """A tqdm bar on stderr: files/s, ETA, errors so far. Created on the first event."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def update(self, event: Progress) -> None:
        self.show(event.done, event.total, event.failed)

    def show(self, done: int, total: int, failed: int = 0) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            # No monitor thread: while this process has one thread, index workers start by
            # fork (milliseconds) rather than from a fork server (see workers._pool_context).
            tqdm.monitor_interval = 0
            self.bar = tqdm(total=total, unit="file", dynamic_ncols=True, file=sys.stderr)
        self.bar.n = done
        self.bar.set_postfix(errors=failed, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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


@cli.command("status")
@db_option
@click.option("--errors", "show_errors", is_flag=True, help="List the files that failed.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with --watch: a line each).")
@click.option(
    "--watch",
    is_flag=True,
    help="Follow the index, apply or undo running on this database, wherever it was started, "
    "until it ends; exit 0 when it finished, 1 when it failed or was interrupted.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: how often to look.",
)
@click.option(
    "--check-stuck",
    is_flag=True,
    help="Exit 1 when a run has made no progress for --stuck-after seconds (a health check).",
)
@stuck_after_option
@handle_errors
def status_command(
    db: str | None,
    show_errors: bool,
    as_json: bool,
    watch: bool,
    interval: float,
    check_stuck: bool,
    stuck_after: float,
) -> None:
    """Show the indexed folders, image and error counts, the runs going on, and the database's
    size and schema. --watch follows a run live from any shell (rate, ETA, errors as they
    happen); plain lines when the output is not a terminal.

    \b
    Examples:
      dedupdb status
      dedupdb status --errors
      dedupdb status --json
      dedupdb status --watch
      dedupdb status --check-stuck --stuck-after 600   # exit 1: a run is stuck
    """
    from .progress import format_duration, live_runs
    from .status import status

    store = _open(db, create=False, reading=True)
    try:
        if watch:
            sys.exit(_watch(store, interval, as_json, stuck_after))
        result = status(store)
        live = live_runs(store, stuck_after=stuck_after)
        errors = _failures(store) if show_errors else []
    finally:
        store.close()
    if as_json:
        data = result.to_dict()
        data["live_runs"] = [run.to_dict() for run in live]
        if show_errors:
            data["errors"] = errors
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(format_status(result))
        for run in live:
            click.echo(f"Running:  {format_run(run)}")
        for error in errors:
            path, reason = printable(error["path"]), printable(error["reason"])
            click.echo(f"  {error['kind']}: {path}: {reason}")
    stuck = [run for run in live if run.stuck]
    for run in stuck:
        click.echo(
            f"Stuck: {run.kind} of {printable(run.target)} (pid {run.pid} on {run.host}) "
            f"has made no progress for {format_duration(run.idle_seconds)}",
            err=True,
        )
    if check_stuck and stuck:
        sys.exit(EXIT_PROBLEMS)


def _watch(store: Store, interval: float, as_json: bool, stuck_after: float) -> int:
    """Follow the newest live run until it ends; the exit code says how it ended."""
    from .progress import latest_run, live_runs, watch

    live = live_runs(store, stuck_after=stuck_after)
    if not live:
        last = latest_run(store)
        if as_json:
            click.echo(json.dumps({"running": False, "last": last and last.to_dict()}))
        else:
            click.echo("No run is going on." + (f" The last: {format_run(last)}" if last else ""))
        return 0
    run = live[-1]
    if len(live) > 1 and not as_json:
        others = ", ".join(f"{r.kind} {r.id}" for r in live[:-1])
        click.echo(f"Also running: {others}; watching the newest.", err=True)
    line = _WatchLine(enabled=not as_json and sys.stdout.isatty())
    shown = 0
    try:
        for snapshot in watch(store, run.id, interval=interval):
            if as_json:
                click.echo(json.dumps(snapshot.to_dict()))
                continue
            new = snapshot.errors_after(shown)
            if new and new[0].number > shown + 1:
                line.echo(
                    f"  ... {new[0].number - shown - 1:,} more errors (`dedupdb status --errors`)"
                )
            for error in new:
                line.echo(f"  ! {printable(error.path)}: {printable(error.reason)}")
            shown = max([shown, *(e.number for e in new)])
            line.show(format_run(snapshot))
    except KeyboardInterrupt:
        line.close()
        click.echo("Stopped watching; the run goes on.", err=True)
        return EXIT_INTERRUPTED
    line.close()
    if not as_json:
        click.echo(format_ending(snapshot))
    return 0 if snapshot.state == "finished" else EXIT_PROBLEMS


class _WatchLine:
    """The watched run's status: rewritten in place on a terminal, else one plain line each
    time it changes. Other lines (errors) go above it."""

    def __init__(self, enabled: bool) -> None:
        self.tty = enabled
        self.current = ""
        self.last_plain = ""

    def show(self, text: str) -> None:
        if not self.tty:
            if text != self.last_plain:
                click.echo(text)
                self.last_plain = text
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        text = text[:width]
        if text == self.current:
            return
        click.echo("\r" + text.ljust(len(self.current)), nl=False)
        self.current = text

    def echo(self, text: str) -> None:
        if self.tty and self.current:
            click.echo("\r" + " " * len(self.current) + "\r", nl=False)
            self.current = ""
        click.echo(text)

    def close(self) -> None:
        if self.tty and self.current:
            click.echo()
            self.current = ""


def format_run(run: RunProgress) -> str:
    """One line about a run (``progress.RunProgress``): where it is, its rate and ETA."""
    from .progress import format_duration

    head = f"{run.kind} of {printable(run.target)}"
    if run.running and run.phase != "working":
        body = f"walking the folder, {run.seen:,} files seen"
    else:
        body = f"{run.done:,}/{run.planned:,} files"
        if run.fraction is not None and run.planned:
            body += f" ({run.fraction:.0%})"
    parts = [f"{head}: {body}"]
    if run.running:
        parts.append(f"{run.rate:,.1f} files/s")
        if run.eta_seconds is not None:
            parts.append(f"ETA {format_duration(run.eta_seconds)}")
        busy = sum(1 for w in run.workers if w.path is not None)
        if run.workers:
            parts.append(f"{busy}/{len(run.workers)} workers busy")
    errors = run.failed if run.kind == "index" else run.skipped
    if errors:
        parts.append(f"{errors:,} {'failed' if run.kind == 'index' else 'skipped'}")
    if run.stuck:
        parts.append(f"STUCK: no progress for {format_duration(run.idle_seconds)}")
    if not run.running:
        parts.append(f"{run.ending} {run.finished_at or run.updated_at:%Y-%m-%d %H:%M} UTC")
    return ", ".join(parts)


def format_ending(run: RunProgress) -> str:
    """How a watched run ended, with its figures."""
    from .progress import format_duration

    took = format_duration(run.elapsed_seconds)
    if run.kind == "index":
        figures = (
            f"{run.new:,} new, {run.changed:,} changed, {run.moved:,} moved, "
            f"{run.unchanged:,} unchanged, {run.skipped:,} skipped, {run.failed:,} failed"
        )
    else:
        figures = f"{run.done - run.skipped:,} done, {run.skipped:,} skipped"
    text = f"The {run.kind} of {printable(run.target)} {run.ending} after {took}: {figures}."
    if run.state == "interrupted":
        text += (
            f" It stopped at {run.done:,} of {run.planned:,} files (its process {run.pid} on "
            f"{run.host} is gone or silent): run it again to continue."
        )
    elif run.state == "failed" and run.message:
        text += f" Why: {printable(run.message)}"
    return text


def _failures(store: Store) -> list[dict[str, str]]:
    from sqlalchemy import select

    from .store.schema import Failure, Root

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
        f"Database: {printable(result.database)} ({size})",
        f"Schema:   {result.schema_version}"
        + ("" if result.schema_version == result.schema_head else f" (head {result.schema_head})"),
        f"Hashes:   size {params.get('hash_size', '-')}, version {params.get('version', '-')}",
        f"Images:   {result.images:,}",
    ]
    if not result.roots:
        lines.append("No folders indexed yet: dedupdb index FOLDER")
    for root in result.roots:
        lines.append(
            f"  {printable(root.path)}: {root.present:,} images, {root.missing:,} missing, "
            f"{root.failed:,} failed, {root.skipped:,} skipped "
            f"(last indexed {root.last_indexed_at or 'never (interrupted)'})"
        )
        if root.acted_on:
            acted = ", ".join(f"{count:,} {state}" for state, count in root.acted_on.items())
            lines.append(f"    acted on by `dedupdb apply`: {acted} (`dedupdb history`)")
    return "\n".join(lines)


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
    from .metrics import metrics_text, write_metrics

    store = _open(db, create=False)
    try:
        if output is not None:
            write_metrics(store, output, stuck_after=stuck_after)
        else:
            click.echo(metrics_text(store, stuck_after=stuck_after), nl=False)
    finally:
        store.close()


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
    from .status import prune

    store = _open(db, create=False)
    try:
        removed = prune(store, root)
    finally:
        store.close()
    click.echo(f"Forgot {removed:,} missing image{'s' if removed != 1 else ''}.")


# ----------------------------------------------------------------------------- report


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
    "crops, tilts, a picture inside a larger one, each verified by its geometry (slower).",
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
    """
    if not quiet and sys.stderr.isatty():  # a word at once, before loading the report's code
        click.echo("Finding duplicates among the indexed images ...", err=True)
    from .decisions import remember_report
    from .html_report import make_thumbnails, render_html
    from .report import (
        ReportOptions,
        actionable,
        build_report,
        cluster_membership,
        write_csv,
        write_json,
    )

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
    store = _open(db, create=False, reading=True)
    try:
        result = build_report(store, options)
        remembered = remember_report(store, cluster_membership(result), actionable(result))
    finally:
        store.close()
    if json_file:
        with _open_output(json_file) as out:
            write_json(result, out)
    if csv_file:
        with _open_output(csv_file) as out:
            write_csv(result, out)
    if html_file:
        bar = _ProgressBar(enabled=not quiet and sys.stderr.isatty())
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
    from .quality import human_bytes

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
    from .decisions import (
        forget_not_duplicates,
        image_ids_for_paths,
        last_cluster,
        list_not_duplicates,
        mark_not_duplicates,
    )

    if list_all and (paths or cluster_ids or forget):
        given = "PATHS" if paths else "--cluster" if cluster_ids else "--forget"
        raise click.UsageError(f"--list and {given} cannot be used together")
    store = _open(db, create=False, reading=list_all)
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


# ----------------------------------------------------------------------------- apply / undo


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)  # pragma: no cover


_VERBS = {
    "move": "move",
    "trash": "send to the trash",
    "hardlink": "replace by a hard link",
    "symlink": "replace by a symbolic link",
    "delete": "DELETE",
}


@cli.command("apply")
@click.argument("report", required=False, type=click.Path(dir_okay=False, path_type=str))
@db_option
@click.option(
    "--move-to",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Quarantine folder (the default action: move duplicates there, keeping their "
    "folder layout under DIR/<root name>/) [default: quarantine/ next to the database]. "
    "--hardlink/--symlink keep the replaced files there too.",
)
@click.option("--trash", is_flag=True, help="Send duplicates to the desktop trash.")
@click.option("--hardlink", is_flag=True, help="Replace duplicates by hard links.")
@click.option("--symlink", is_flag=True, help="Replace duplicates by symbolic links.")
@click.option("--delete", is_flag=True, help="Delete duplicates. Cannot be undone.")
@click.option("--yes", is_flag=True, help="Do it (without --yes: only print the plan).")
@click.option("--resume", is_flag=True, help="Finish an apply run that was interrupted.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan or the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def apply_command(
    report: str | None,
    db: str | None,
    move_to: str | None,
    trash: bool,
    hardlink: bool,
    symlink: bool,
    delete: bool,
    yes: bool,
    resume: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Act on a report's keepers: move the other copies to a quarantine folder (default),
    send them to the trash, replace them by links, or delete them. Without --yes only the
    plan is printed. Each file is checked against the index just before it is touched
    (size, time, content hash, and its keeper's); anything changed is skipped. Every run is
    journaled: `dedupdb undo` reverses it, `--resume` finishes one that was interrupted.

    Without REPORT, apply acts on the last report you made (`dedupdb report`): its clusters
    and keepers, as chosen with its options (--prefer, --threshold, ...); the plan says which
    report that is. REPORT is a JSON file from `dedupdb report --json` (edit keepers or
    remove clusters first if you like).

    \b
    Examples:
      dedupdb report --html report.html  # review it first
      dedupdb apply                      # plan from that report; nothing changes
      dedupdb report --json report.json && dedupdb apply report.json
      dedupdb apply report.json --move-to /mnt/nas/dedupdb-quarantine --yes
      dedupdb apply report.json --hardlink --yes
      dedupdb apply --resume
    """
    from .actions import MOVE, apply, load_report, plan_actions, report_source
    from .actions import resume as resume_run
    from .decisions import last_report

    mode = _one_action(trash=trash, hardlink=hardlink, symlink=symlink, delete=delete)
    if move_to is not None and mode in ("trash", "delete"):
        raise click.UsageError(f"--move-to does not go with --{mode}")
    if resume and (report is not None or mode is not None or move_to is not None):
        raise click.UsageError(
            "--resume finishes the interrupted run as it was planned: give no REPORT, "
            "action or --move-to"
        )
    store = _open(db, create=False)
    bar = _ProgressBar(enabled=not quiet and not as_json and sys.stderr.isatty())

    def progress(done: int, total: int, path: str) -> None:
        bar.show(done, total)

    try:
        if resume:
            result = resume_run(store, progress)
        else:
            data = load_report(report) if report is not None else last_report(store)
            plan = plan_actions(
                store, data, mode or MOVE, quarantine=move_to, source=report_source(report)
            )
            if not yes:
                if as_json:
                    click.echo(json.dumps({"dry_run": True, **plan.to_dict()}, indent=2))
                else:
                    click.echo(format_plan(plan))
                sys.exit(EXIT_PROBLEMS if plan.refused else 0)
            if not as_json:  # said before acting, as the dry run's plan says it
                for line in _metadata_warnings(plan):
                    click.echo(line, err=True)
            result = apply(store, plan, progress)
    except KeyboardInterrupt:
        _exit_interrupted(
            bar,
            "Interrupted: every file is in one piece. Finish the run with "
            "`dedupdb apply --resume`, or reverse it with `dedupdb undo`.",
        )
    finally:
        bar.close()
        store.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(format_result(result))
    if result.skipped:
        sys.exit(EXIT_PROBLEMS)


def _one_action(**flags: bool) -> str | None:
    """The one action asked for (None: the default, move), or a usage error naming two."""
    chosen = [name for name, given in flags.items() if given]
    if len(chosen) > 1:
        raise click.UsageError(
            f"--{chosen[0]} and --{chosen[1]} cannot be used together: choose one action"
        )
    return chosen[0] if chosen else None


def _when(stamp: str | None) -> str:
    """A report's UTC time stamp as the local time it was made."""
    from datetime import datetime, timezone

    if stamp is None:
        return "at an unknown time"
    try:
        made = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return stamp
    return made.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def settings_text(settings: dict[str, Any]) -> str:
    """A report's settings in a few words: the options that decide clusters and keepers."""
    if settings.get("exact"):
        words = ["exact copies only"]
    else:
        threshold = settings.get("threshold")
        bits = threshold if threshold is not None else "default"
        words = [f"{settings.get('hash', 'phash')}, threshold {bits}"]
        if settings.get("second_hash"):
            words.append(f"+ {settings['second_hash']}")
        words.append(f"rotations {'on' if settings.get('rotations', True) else 'off'}")
        words.append(f"crops {'on' if settings.get('crops', True) else 'off'}")
        if settings.get("ssim") is not None:
            words.append(f"SSIM >= {settings['ssim']}")
    for name in ("prefer", "avoid"):
        if settings.get(name):
            words.append(f"{name} {' '.join(settings[name])}")
    return ", ".join(words)


def format_plan(plan: Any) -> str:
    verb = _VERBS[plan.action]
    lines = [
        f"Report: {printable(plan.source)}, made {_when(plan.generated_at)} "
        f"({settings_text(plan.settings)})",
        f"Plan: {verb} {len(plan.actions):,} files ({_size(plan.bytes)})",
    ]
    if plan.quarantine is not None:
        lines[1] += f"; originals go to {printable(plan.quarantine)}"
    keeper = None
    for item in plan.actions:
        if item.keeper.path != keeper:
            keeper = item.keeper.path
            lines.append(f"  cluster {item.cluster}: keep {printable(keeper)}")
        target = f" -> {printable(item.destination)}" if plan.action == "move" else ""
        lines.append(f"    {verb} {printable(item.file.path)}{target}")
        if item.metadata_lost:
            lines.append(f"      ! it has {printable(item.metadata_lost)}; the keeper has not")
    for refusal in plan.refused:
        lines.append(
            f"  ! cluster {refusal.cluster}: {printable(refusal.path)}: {printable(refusal.reason)}"
        )
    if plan.action == "delete":
        lines.append("Delete cannot be undone: --move-to or --trash can.")
    if plan.action in ("hardlink", "symlink"):
        lines.append(
            "The replaced files are kept in the quarantine folder so that `dedupdb undo` can "
            "restore them: empty it to free the space."
        )
    lines.extend(_metadata_warnings(plan)[-1:])
    lines.append("Dry run: nothing was changed. Add --yes to do it.")
    return "\n".join(lines)


def _metadata_warnings(plan: Any) -> list[str]:
    """What the plan's copies hold that their keepers lack, one line per copy and a summary
    (empty when nothing is lost)."""
    lost = plan.metadata_lost
    if not lost:
        return []
    lines = [
        f"Warning: {printable(a.file.path)} has {printable(a.metadata_lost)}; its keeper "
        f"{printable(a.keeper.path)} has not"
        for a in lost
    ]
    lines.append(
        f"Warning: {len(lost):,} copies hold camera metadata their keeper lacks: copy it to "
        "the keeper first (exiftool -TagsFromFile COPY KEEPER), or keep that copy (edit the "
        "keeper in `dedupdb report --json FILE`, or --prefer its folder there)"
    )
    return lines


def format_result(result: Any) -> str:
    lines = [
        f"Run {result.run_id}: {_VERBS[result.action]} {len(result.done):,} files "
        f"({_size(result.bytes)}), {len(result.skipped):,} skipped."
    ]
    for skip in result.skipped[:50]:
        lines.append(f"  ! {printable(skip.path)}: {printable(skip.reason)}")
    if len(result.skipped) > 50:
        lines.append(f"  ... and {len(result.skipped) - 50} more (`dedupdb history --json`)")
    if result.action == "delete":
        lines.append("Deleted files cannot be restored.")
    elif result.done:
        lines.append(f"Undo with: dedupdb undo {result.run_id}")
    return "\n".join(lines)


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
    from .actions import undo

    store = _open(db, create=False)
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

    from .actions import history

    store = _open(db, create=False, reading=True)
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
            f"({_size(r.bytes)}), {r.skipped:,} skipped"
        )
        if r.undone:
            line += f", {r.undone:,} undone"
        if r.planned:
            line += f", {r.planned:,} unfinished"
        if r.quarantine:
            line += f"  -> {printable(r.quarantine)}"
        click.echo(line)


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

    store = _open(db, create=False, reading=True)
    try:
        written = backup(store, Path(target))
    finally:
        store.close()
    click.echo(
        f"Backed up {printable(str(store.sqlite_path))} to {printable(str(written))} "
        f"({written.stat().st_size:,} bytes)."
    )


@cli.command("serve")
@db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any but the loopback requires a token (made up if not given).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: a free one).",
)
@click.option(
    "--token",
    envvar="DEDUPDB_TOKEN",
    metavar="TOKEN",
    help="Require this access token (in the URL once, then a cookie) [env DEDUPDB_TOKEN].",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the address in a browser.")
@handle_errors
def serve_command(
    db: str | None, host: str, port: int, token: str | None, open_browser: bool
) -> None:
    """Review the duplicates in a browser: compare the copies, choose keepers, mark
    not-duplicates, then apply (the same plan and journal as `dedupdb apply`) and undo.
    Prints the address; Ctrl+C stops the server. Needs the serve extra:
    pip install 'dedupdb[serve]'.

    \b
    Examples:
      dedupdb serve --open
      dedupdb serve --db /srv/photos.sqlite --port 9000
      dedupdb serve --host 0.0.0.0 --port 8765      # prints a URL with a token
    """
    try:
        from .web.server import serve
    except ImportError as err:
        raise DedupdbError(
            f"dedupdb serve needs its extra packages ({err.name} is missing)",
            "pip install 'dedupdb[serve]'",
        ) from err

    def ready(address: Any) -> None:
        click.echo(f"dedupdb review: {address.url}  (Ctrl+C stops it)")
        if open_browser:
            import webbrowser

            webbrowser.open(address.url)

    store = _open(db, create=False)
    try:
        serve(store, host, port, token=token, on_ready=ready)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _terminate(signum: int, _frame: Any) -> None:
    """SIGTERM (docker stop, systemd, Kubernetes) interrupts like Ctrl+C: work is saved."""
    signal.signal(signum, signal.SIG_DFL)
    raise KeyboardInterrupt


def main() -> None:
    """The console script: the CLI, with SIGTERM handled and unexpected errors in one line."""
    global _starting
    gc.disable()  # until the command has loaded its modules: see _started
    _starting = True
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli(prog_name="dedupdb")
    except Exception as err:  # a bug or an unforeseen condition; the library's are handled
        if "--debug" in sys.argv[1:] or os.environ.get("DEDUPDB_DEBUG"):
            raise
        where = traceback.extract_tb(err.__traceback__)[-1]
        click.secho(
            f"Error: unexpected {type(err).__name__}: {printable(str(err))} "
            f"(at {os.path.basename(where.filename)}:{where.lineno}; run with --debug for the "
            "traceback, and please report it)",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_PROBLEMS)
    finally:  # a command that opened no database (--help, a usage error)
        _starting = False
        gc.enable()
