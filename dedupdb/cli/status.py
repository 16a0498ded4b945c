"""`dedupdb status`: what the database holds, the runs going on (`--watch`), the files that
failed (`--errors`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import TYPE_CHECKING

import click

from ..walk import printable
from .base import (
    EXIT_INTERRUPTED,
    EXIT_PROBLEMS,
    cli,
    db_option,
    handle_errors,
    open_db,
    stuck_after_option,
)

if TYPE_CHECKING:
    from ..library import Status
    from ..progress import RunProgress
    from ..store import Store


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
    from ..library import status
    from ..progress import format_duration, live_runs

    store = open_db(db, create=False, reading=True)
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
    from ..progress import latest_run, live_runs, watch

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
    from ..progress import format_duration

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
    from ..progress import format_duration

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
    from ..store import library

    return [
        {"root": f.root, "path": os.path.join(f.root, f.path), "kind": f.kind, "reason": f.reason}
        for f in library.failures(store)
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
