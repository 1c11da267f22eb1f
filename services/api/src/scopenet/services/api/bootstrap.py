"""What ``scopenet up`` does for the API before starting it: settle the auth mode and tokens file
(writing one with an admin token on first start) and tell the user how to point the CLI at it.
In keystone mode there is no file: Keystone's users log in with what they have."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from scopenet.services.api.auth import TokensFileError, write_tokens_file


@dataclass(frozen=True)
class ApiSetup:
    env: dict[str, str]
    """``SCOPENET_*`` variables for the API process."""
    lines: list[str]
    """What to print: the endpoint and the two lines that configure the openstack CLI."""
    ui_token: str | None = None
    """The admin token the web UI's one-time login link logs in with (tokens mode)."""


def _admin_token(path: Path) -> tuple[str, str] | None:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    tokens = doc.get("tokens") if isinstance(doc, dict) else None
    for token, spec in (tokens or {}).items():
        if isinstance(spec, dict) and "admin" in (spec.get("roles") or []):
            return str(token), str(spec.get("project_id"))
    return None


def prepare(*, state_dir: Path, host: str, port: int, auth: str, tokens_file: Path | None) -> ApiSetup:
    endpoint = f"http://{host}:{port}"
    env = {"SCOPENET_API_PORT": str(port), "SCOPENET_API_HOST": host, "SCOPENET_AUTH": auth}
    if auth == "keystone":  # the SCOPENET_KEYSTONE_* come from the environment, or from `up --keystone`
        return ApiSetup(env, [f"scopenet: HTTP API (Neutron v2.0) on {endpoint}; Keystone tokens (auth_token)"])
    if auth == "noauth":
        return ApiSetup(
            env,
            [
                f"scopenet: HTTP API (Neutron v2.0) on {endpoint} WITHOUT authentication (--auth noauth)",
                f"  export OS_AUTH_TYPE=admin_token OS_TOKEN=noauth OS_ENDPOINT={endpoint}",
                "  openstack address scope list",
            ],
        )
    given = tokens_file is not None
    path = (tokens_file or state_dir / "tokens.yaml").absolute()
    created = False
    if not path.exists():
        if given:
            raise TokensFileError(f"tokens file {path} does not exist")
        write_tokens_file(path)
        created = True
    env["SCOPENET_TOKENS_FILE"] = str(path)
    head = f"scopenet: HTTP API (Neutron v2.0) on {endpoint}; tokens in {path}" + (" (new)" if created else "")
    admin = None if given else _admin_token(path)
    if admin is None:
        return ApiSetup(
            env, [head, f"  export OS_AUTH_TYPE=admin_token OS_ENDPOINT={endpoint} OS_TOKEN=<a token from {path}>"]
        )
    token, project = admin
    return ApiSetup(
        env,
        ui_token=token,
        lines=[
            head,
            f"scopenet: admin project {project}; point the openstack CLI at scopenet with:",
            f"  export OS_AUTH_TYPE=admin_token OS_ENDPOINT={endpoint} OS_TOKEN={token}",
            "  openstack address scope list",
        ],
    )


def ui_line(endpoint: str, token: str | None, *, wait: float = 30.0) -> str:
    """The web UI's address to print: with ``token``, a one-time login link the running API mints
    (``POST /ui/login-links``; retried while the API starts), else the plain address."""
    if token is None:
        return f"scopenet: web UI (scope map): {endpoint}/ui/"
    deadline = time.monotonic() + wait
    while True:
        request = urllib.request.Request(
            f"{endpoint}/ui/login-links", method="POST", headers={"X-Auth-Token": token}, data=b""
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                link = json.loads(answer.read())["login_link"]
            return (
                f"scopenet: web UI (scope map), one-time login link valid {link['expires_in'] // 60} min: {link['url']}"
            )
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                return f"scopenet: web UI (scope map): {endpoint}/ui/ (log in with the admin token)"
            time.sleep(0.5)
