"""The documentation keeps up with the code (after sqlite-utils' ``test_docs.py``): every command
has help with examples and is in the README, and the README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dedupdb.cli import cli

PROJECT = Path(__file__).resolve().parent.parent
README = (PROJECT / "README.md").read_text()
COMMANDS = sorted(cli.commands)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)


def test_there_are_commands() -> None:
    assert {"index", "status", "prune"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output, f"`dedupdb {command} --help` shows no examples"
    examples = result.output.split("Examples:", 1)[1]
    assert f"dedupdb {command}" in examples


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"dedupdb {command}" in README, f"README.md does not mention `dedupdb {command}`"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_is_in_the_help(command: str) -> None:
    """Every option has a help text (click prints none for an option without one)."""
    group = cli.commands[command]
    for param in group.params:
        if isinstance(param, click.Option):
            assert param.help, f"dedupdb {command} {param.opts[0]} has no help text"


def test_top_level_help_has_examples() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "Examples:" in result.output


def test_readme_first_command_installs_and_indexes() -> None:
    first = code_blocks(README)[0].strip()
    assert "pip install" in first
    assert re.search(r"&& dedupdb index \S+$", first), first


def test_readme_test_command_is_what_ci_runs() -> None:
    lines = (PROJECT / ".ci" / "run").read_text().splitlines()
    marker = lines.index("# README test command:")
    ci_command = lines[marker + 1].strip()
    blocks = [b.strip() for b in code_blocks(README)]
    assert blocks[1] == ci_command
    for tool in ("pip install", "'.[test]'", "ruff check .", "ruff format --check .", "mypy"):
        assert tool in ci_command
    assert ci_command.endswith("pytest")
