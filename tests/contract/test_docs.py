"""docs/ explains the repository: its generated tables match the code, and every pointer into it resolves.

- ``docs/subjects.md`` and ``docs/configuration.md`` are what ``scripts/gen_docs.py`` writes today.
- Every relative link of a markdown page (README, docs/, deploy/) names a file that exists, and an
  anchor that one of its headings makes.
- Every ``docs/<page>.md#<anchor>`` a comment or docstring cites names a heading that exists, so a
  code pointer cannot outlive the section it points to.
- No text points at documents a clone of the repository does not have.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_DIRS = {".venv", "node_modules", "build", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".mjs", ".sql", ".conf", ".json", ""}
#: Directories exempted while they are being rewritten (e.g. ``"services/topology/"``); keep it empty.
PENDING: tuple[str, ...] = ()

LINK = re.compile(r"\]\(([^)\s]+)\)")
CITED = re.compile(r"docs/([a-z_]+\.md)#([A-Za-z0-9_-]+)")
FOREIGN = re.compile(r"SPEC \u00a7|\.\./shared|DATAPATH\.md|DESIGN\.md|SPEC\.md|STYLE\.md")


def _repo_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            files.append(path)
    return files


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def _anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not (m := re.match(r"#{1,6} (.+)", line)):
            continue
        slug = _slug(m.group(1))
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return frozenset(anchors)


def test_generated_docs_are_up_to_date() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr or run.stdout


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a URL: not ours to check offline
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_sections_cited_from_the_code_exist() -> None:
    broken = []
    for path in _repo_files():
        for page, anchor in CITED.findall(path.read_text(errors="replace")):
            dest = ROOT / "docs" / page
            if not dest.exists() or anchor not in _anchors(dest):
                broken.append(f"{path.relative_to(ROOT)}: docs/{page}#{anchor}")
    assert not broken, "cited sections that do not exist:\n" + "\n".join(sorted(set(broken)))


def test_no_pointer_to_documents_outside_the_repository() -> None:
    here = Path(__file__).relative_to(ROOT).as_posix()
    found = []
    for path in _repo_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel == here or rel.startswith(PENDING):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if FOREIGN.search(line):
                found.append(f"{rel}:{n}: {line.strip()[:100]}")
    assert not found, "point at docs/ instead:\n" + "\n".join(found)
