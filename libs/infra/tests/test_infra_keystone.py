"""The Keystone launcher without starting Keystone: where its venv is, and a missing one said plainly.

Keystone itself runs in ``tests/integration/api/test_api_keystone.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scopenet.infra.keystone import KeystoneUnavailable, keystone_server, keystone_venv, password_env


def test_the_venv_is_beside_the_workspace_unless_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SCOPENET_KEYSTONE_VENV", raising=False)
    assert keystone_venv().name == ".venv-keystone"
    monkeypatch.setenv("SCOPENET_KEYSTONE_VENV", str(tmp_path))
    assert keystone_venv() == tmp_path


def test_a_missing_venv_says_how_to_make_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCOPENET_KEYSTONE_VENV", str(tmp_path / "nowhere"))
    with pytest.raises(KeystoneUnavailable, match="make install"), keystone_server(tmp_path / "data"):
        pass
    assert not (tmp_path / "data").exists()  # nothing half-made


def test_password_credentials_as_the_cli_reads_them() -> None:
    env = password_env("http://127.0.0.1:5000/v3", username="alice", password="pw", project="p1")
    assert env["OS_AUTH_URL"] == "http://127.0.0.1:5000/v3" and env["OS_PROJECT_NAME"] == "p1"
    assert env["OS_USER_DOMAIN_NAME"] == env["OS_PROJECT_DOMAIN_NAME"] == "Default"
