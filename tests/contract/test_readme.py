"""The README's configuration table is the whole truth: every setting appears in it."""

from __future__ import annotations

from pathlib import Path

from scopenet.runtime.settings import Settings
from scopenet.services.topology.settings import TopologySettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    names = [f"SCOPENET_{n.upper()}" for n in Settings.model_fields]
    names += [f"SCOPENET_TOPOLOGY_{n.upper()}" for n in TopologySettings.model_fields]
    missing = [n for n in names if n not in README]
    assert not missing, f"README's configuration table lacks {missing}"


def test_readme_shows_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
