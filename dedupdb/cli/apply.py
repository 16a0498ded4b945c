"""`dedupdb apply`: the plan for a report, and carrying it out (`--yes`, `--resume`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..walk import printable
from .base import (
    EXIT_PROBLEMS,
    ProgressBar,
    cli,
    db_option,
    exit_interrupted,
    handle_errors,
    open_db,
    settings_text,
    size_text,
)

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
    from ..actions import MOVE, apply, load_report, plan_actions, report_source
    from ..actions import resume as resume_run
    from ..decisions import last_report

    mode = _one_action(trash=trash, hardlink=hardlink, symlink=symlink, delete=delete)
    if move_to is not None and mode in ("trash", "delete"):
        raise click.UsageError(f"--move-to does not go with --{mode}")
    if resume and (report is not None or mode is not None or move_to is not None):
        raise click.UsageError(
            "--resume finishes the interrupted run as it was planned: give no REPORT, "
            "action or --move-to"
        )
    store = open_db(db, create=False)
    bar = ProgressBar(enabled=not quiet and not as_json and sys.stderr.isatty())

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
        exit_interrupted(
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


def format_plan(plan: Any) -> str:
    verb = _VERBS[plan.action]
    lines = [
        f"Report: {printable(plan.source)}, made {_when(plan.generated_at)} "
        f"({settings_text(plan.settings)})",
        f"Plan: {verb} {len(plan.actions):,} files ({size_text(plan.bytes)})",
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
        f"({size_text(result.bytes)}), {len(result.skipped):,} skipped."
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
