"""Meta-tests that keep the documentation honest (sqlite-utils' test_docs.py): every command has
help with examples and appears in the README; the README's commands are the ones CI runs; the
deployment guide and the changelog cover what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dedupdb.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def commands(group: click.Group = cli, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found.extend(commands(command, prefix + name + " "))
    return found


@pytest.mark.parametrize("name", [name for name, _ in commands()])
def test_every_command_has_help_with_examples(name: str) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output, f"`dedupdb {name} --help` shows no examples"
    example_lines = result.output.split("Examples:", 1)[1]
    assert f"dedupdb {name}" in example_lines


@pytest.mark.parametrize("name", [name for name, _ in commands()])
def test_every_command_is_in_the_readme(name: str) -> None:
    assert f"dedupdb {name}" in README, f"README.md does not mention `dedupdb {name}`"


def test_every_option_has_help() -> None:
    for name, command in commands():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"dedupdb {name} {param.opts[0]} has no help"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```sh\n{ci}\n```" in README


def test_readme_documents_exit_codes_and_completion() -> None:
    table = re.findall(r"^\| (\d+) \| (.+) \|$", README, re.M)
    assert [code for code, _ in table[:5]] == ["0", "1", "2", "3", "130"]
    for text in ("NO_COLOR", "--debug", "_DEDUPDB_COMPLETE=bash_source dedupdb"):
        assert text in README


def test_readme_compares_with_the_peers_and_has_a_faq() -> None:
    for peer in ("imagededup", "czkawka", "dupeGuru", "findimagedupes"):
        assert peer in README
    faq = README.split("## FAQ", 1)[1]
    for topic in ("threshold", "rotat", "database live"):
        assert topic in faq


def test_deployment_guide_covers_what_it_promises() -> None:
    guide = (ROOT / "DEPLOYMENT.md").read_text()
    for needed in (
        "docker run",
        "docker compose",
        "kind: Job",
        "kind: CronJob",
        "OnCalendar=monthly",
        "dedupdb backup",
        "## Upgrading",
        "Rolling back",
        "## Security notes",
        "runAsNonRoot",
    ):
        assert needed in guide, needed


def test_changelog_has_the_current_version() -> None:
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog
    assert "## [Unreleased]" in changelog
    assert re.search(
        rf"^## \[{re.escape(version.group(1))}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    )


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)


def test_readme_first_command_installs_indexes_and_reports() -> None:
    first = code_blocks(README)[0].strip()
    assert "pip install" in first
    assert re.search(r"&& dedupdb index \S+ && dedupdb report --html \S+$", first), first


def test_readme_second_command_is_the_ci_test_command() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_command = lines[lines.index("# README test command:") + 1].strip()
    assert [b.strip() for b in code_blocks(README)][1] == ci_command
    for tool in ("pip install", "'.[test]'", "ruff check .", "ruff format --check .", "mypy"):
        assert tool in ci_command
    assert ci_command.endswith("pytest")
