"""What every command shares: the ``dedupdb`` click group, ``--db``, the one place where library
errors become a line on stderr and an exit code, opening the database, the progress bar and a
few formatters. Each command lives in a module of its own, registered on import."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from .. import collector
from ..defaults import ENV_VAR, default_database_path
from ..errors import DedupdbError
from ..walk import printable  # every name or message printed for people goes through it

if TYPE_CHECKING:
    from ..indexing import Progress
    from ..store import Store

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


def open_db(db: str | None, *, create: bool = True, reading: bool = False) -> Store:
    """Open the database; only ``index`` makes one where there is none (``create``). A command
    that only reads (``reading``) opens a database it cannot write read-only, and says so."""
    from ..store import open_store

    store = open_store(db, create=create, reading=reading)
    if store.read_only:
        click.echo(f"Note: {printable(store.read_only)}.", err=True)
    _started()
    return store


# Set by ``main`` while the command starts: the garbage collector is paused meanwhile.
_starting = False


def begin_start() -> None:
    """Pause the garbage collector while the command starts (see ``_started``)."""
    global _starting
    collector.pause()
    _starting = True


def end_start() -> None:
    """The command ended: whatever it did, the collector runs again."""
    global _starting
    _starting = False
    collector.resume(freeze=False)


def _started() -> None:
    """The command has loaded its modules (each command imports them before it opens the
    database): resume the garbage collector that ``main`` paused, leaving out of all future
    collections what start-up made: modules, classes, SQLAlchemy's tables (see ``collector``).
    """
    global _starting
    if _starting:
        _starting = False
        collector.resume()


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
    from .._version import __version__  # reading the package metadata: only when asked

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


def exit_interrupted(bar: ProgressBar, message: str) -> NoReturn:
    """Clear the progress bar, say what was kept and how to go on, exit 130."""
    bar.close()
    click.echo(message, err=True)
    sys.exit(EXIT_INTERRUPTED)


class ProgressBar:
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


def size_text(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)  # pragma: no cover


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
