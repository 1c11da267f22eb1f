"""The HTTP API's settings: the shared ones and where it listens and how it authenticates."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from scopenet.runtime.settings import Settings


class ApiSettings(Settings):
    """Everything the ``api`` service reads (``SCOPENET_*``)."""

    api_host: str = "127.0.0.1"
    """Address the Neutron-compatible HTTP API listens on."""

    api_port: int = Field(default=9696, ge=0, le=65535)
    """Port of the HTTP API (Neutron's 9696). 0 picks a free port (printed at start)."""

    auth: str = Field(default="tokens", pattern="^(tokens|noauth)$")
    """HTTP API authentication: ``tokens`` (X-Auth-Token looked up in ``tokens_file``) or
    ``noauth`` (everyone is admin unless X-Project-Id / X-Roles say otherwise; never the default)."""

    tokens_file: Path | None = None
    """YAML (or JSON) ``{tokens: {<token>: {project_id, roles}}}``. Unset: ``<state_dir>/tokens.yaml``."""
