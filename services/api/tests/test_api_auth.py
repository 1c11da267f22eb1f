"""Tokens file, token lookup, noauth, and what ``scopenet up`` prepares for the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scopenet.services.api.auth import Authenticator, TokensFileError, Unauthorized, load_tokens, write_tokens_file
from scopenet.services.api.bootstrap import prepare


def test_tokens_file_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "t.yaml"
    y.write_text("tokens:\n  secret-token-1: {project_id: p1, roles: [admin]}\n")
    j = tmp_path / "t.json"
    j.write_text('{"tokens": {"secret-token-2": {"project_id": "p2", "roles": ["member"]}}}')
    auth = Authenticator("tokens", load_tokens(y) + load_tokens(j))
    ctx = auth.context({"X-Auth-Token": "secret-token-2"}, "req-1")
    assert (ctx.project_id, ctx.roles, ctx.request_id, ctx.is_admin) == ("p2", ["member"], "req-1", False)
    assert auth.context({"X-Auth-Token": "secret-token-1"}, "r").is_admin
    for headers in ({}, {"X-Auth-Token": "secret-token-"}, {"X-Auth-Token": "x" * 5000}):
        with pytest.raises(Unauthorized):
            auth.context(headers, "r")


@pytest.mark.parametrize(
    "text", ["", "tokens: []", "tokens: {short: {project_id: p}}", "tokens: {long-enough: nope}", "{{{"]
)
def test_bad_tokens_files_fail_at_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TokensFileError):
        load_tokens(path)
    with pytest.raises(TokensFileError):
        load_tokens(tmp_path / "missing.yaml")


def test_noauth_is_admin_unless_headers_say_otherwise() -> None:
    auth = Authenticator("noauth")
    assert auth.context({}, "r").is_admin
    ctx = auth.context({"X-Project-Id": "p9", "X-Roles": "member, reader"}, "r")
    assert (ctx.project_id, ctx.roles, ctx.is_admin) == ("p9", ["member", "reader"], False)


def test_up_writes_an_admin_token_once(tmp_path: Path) -> None:
    first = prepare(state_dir=tmp_path, host="127.0.0.1", port=9696, auth="tokens", tokens_file=None)
    path = tmp_path / "tokens.yaml"
    assert path.stat().st_mode & 0o077 == 0
    doc = yaml.safe_load(path.read_text())
    admin = [t for t, s in doc["tokens"].items() if "admin" in s["roles"]]
    assert len(admin) == 1
    assert first.env["SCOPENET_TOKENS_FILE"] == str(path)
    assert any(f"OS_TOKEN={admin[0]}" in line and "OS_ENDPOINT=http://127.0.0.1:9696" in line for line in first.lines)
    again = prepare(state_dir=tmp_path, host="127.0.0.1", port=9696, auth="tokens", tokens_file=None)
    assert yaml.safe_load(path.read_text()) == doc and "(new)" not in again.lines[0]
    with pytest.raises(FileExistsError):
        write_tokens_file(path)
    with pytest.raises(TokensFileError):
        prepare(state_dir=tmp_path, host="h", port=1, auth="tokens", tokens_file=tmp_path / "nope.yaml")
    assert (
        "SCOPENET_TOKENS_FILE" not in prepare(state_dir=tmp_path, host="h", port=1, auth="noauth", tokens_file=None).env
    )
