"""What ``scopenet up`` does for the API before starting it: settle the auth mode and tokens file
(writing one with an admin token on first start) and tell the user how to point the CLI at it."""

from __future__ import annotations

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
        [
            head,
            f"scopenet: admin project {project}; point the openstack CLI at scopenet with:",
            f"  export OS_AUTH_TYPE=admin_token OS_ENDPOINT={endpoint} OS_TOKEN={token}",
            "  openstack address scope list",
        ],
    )
