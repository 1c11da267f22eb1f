"""The README is the newcomer's page: short, and everything it tells a reader to run or read exists.

The reference material lives in docs/ (its generated tables are checked by test_docs.py), so the
README only has to stay small and truthful: its `make` targets are the Makefile's, its `scopenet`
commands are the CLI's, its links resolve, and it leads to every page of docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from scopenet.commands.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAX_BYTES = 10 * 1024


def _code() -> str:
    """Text inside code spans and fenced blocks: where commands are shown."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    return "\n".join(fenced + spans)


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.M))
    services = re.search(r"^SERVICES\s*:=\s*(.+)$", makefile, flags=re.M)
    assert services, "the Makefile lists SERVICES for its test-<service> targets"
    targets |= {f"test-{s}" for s in services.group(1).split()}
    return targets


def test_readme_is_short() -> None:
    size = len(README.encode())
    assert size <= MAX_BYTES, f"README.md is {size} bytes; move reference material to docs/ (limit {MAX_BYTES})"


def test_readme_shows_the_two_commands() -> None:
    code = _code()
    assert "make demo" in code and "make test" in code


def test_make_targets_it_shows_exist() -> None:
    shown = set(re.findall(r"\bmake ([a-z][\w-]*)", _code()))
    assert shown, "the README shows how to run things"
    missing = sorted(shown - _make_targets())
    assert not missing, f"README shows make targets the Makefile does not have: {missing}"


def test_scopenet_commands_it_shows_exist() -> None:
    shown = re.findall(r"\bscopenet ((?:[a-z][\w-]*)(?: [a-z][\w-]*)?)", _code())
    assert shown
    unknown = []
    for words in shown:
        first, _, second = words.partition(" ")
        command = cli.commands.get(first) if isinstance(cli, click.Group) else None
        if command is None:
            unknown.append(first)
        elif second and isinstance(command, click.Group) and second not in command.commands:
            unknown.append(words)
    assert not unknown, f"README shows scopenet commands the CLI does not have: {unknown}"


def test_links_resolve() -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", README):
        if re.match(r"[a-z]+:", target):
            continue
        if not (ROOT / target.partition("#")[0]).exists():
            broken.append(target)
    assert not broken, f"README links to what does not exist: {broken}"


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    linked = {t.partition("#")[0] for t in re.findall(r"\]\((docs/[^)\s]+)\)", README)}
    assert not pages - linked, f"README does not link to {sorted(pages - linked)}"
