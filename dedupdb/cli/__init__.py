"""The ``dedupdb`` command: parse options, call the library, print. Nothing else knows the
terminal. Library errors (``DedupdbError``) become one line on stderr and exit code 1 here;
anything unexpected becomes one line too (``--debug`` shows the traceback).

Exit codes: 0 success (duplicates found or not; an index run whose unreadable files were
recorded and listed is a success), 1 an error or a refused action, 2 usage errors, 3 ``index
--strict`` when some files could not be read, 130 interrupted (Ctrl+C or SIGTERM).
Colours only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any

import click

from ..walk import printable
from . import (  # noqa: F401  (each registers its command with the group)
    apply,
    backup,
    history,
    index,
    metrics,
    not_duplicate,
    prune,
    report,
    serve,
    status,
    undo,
)
from .base import EXIT_PROBLEMS, ProgressBar, begin_start, cli, end_start


def _terminate(signum: int, _frame: Any) -> None:
    """SIGTERM (docker stop, systemd, Kubernetes) interrupts like Ctrl+C: work is saved."""
    signal.signal(signum, signal.SIG_DFL)
    raise KeyboardInterrupt


def main() -> None:
    """The console script: the CLI, with SIGTERM handled and unexpected errors in one line."""
    begin_start()  # the collector waits until the command has loaded its modules
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
        end_start()


__all__ = ["EXIT_PROBLEMS", "ProgressBar", "cli", "main"]
