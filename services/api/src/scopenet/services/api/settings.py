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

    auth: str = Field(default="tokens", pattern="^(tokens|noauth|keystone)$")
    """HTTP API authentication: ``tokens`` (X-Auth-Token looked up in ``tokens_file``),
    ``keystone`` (Keystone tokens validated by keystonemiddleware's auth_token, as Neutron does;
    the ``keystone_*`` settings) or ``noauth`` (everyone is admin unless X-Project-Id / X-Roles
    say otherwise; never the default)."""

    tokens_file: Path | None = None
    """YAML (or JSON) ``{tokens: {<token>: {project_id, roles}}}``. Unset: ``<state_dir>/tokens.yaml``."""

    keystone_auth_url: str | None = None
    """Keystone mode: the identity endpoint the service user logs in to, e.g.
    ``http://keystone:5000/v3`` (auth_token's ``auth_url``)."""

    keystone_www_authenticate_uri: str | None = None
    """Keystone mode: the public identity endpoint a 401's ``WWW-Authenticate`` header sends clients to.
    Unset: ``keystone_auth_url``."""

    keystone_username: str | None = None
    """Keystone mode: the service user that validates tokens (it needs the ``service`` role, or admin)."""

    keystone_password: str | None = None
    """Keystone mode: the service user's password."""

    keystone_project_name: str = "service"
    """Keystone mode: the service user's project."""

    keystone_user_domain_name: str = "Default"
    """Keystone mode: the service user's domain."""

    keystone_project_domain_name: str = "Default"
    """Keystone mode: the domain of the service user's project."""

    keystone_region_name: str | None = None
    """Keystone mode: the region whose identity endpoint is used. Unset: any."""

    keystone_interface: str | None = Field(default=None, pattern="^(public|internal|admin)$")
    """Keystone mode: which identity endpoint of the catalog validates tokens. Unset: ``internal``."""

    keystone_memcached_servers: list[str] = []
    """Keystone mode: memcached ``host:port`` list (JSON) shared by every replica for the token
    cache. Empty: an in-process cache per API process."""

    keystone_token_cache_time: int | None = Field(default=None, ge=0)
    """Keystone mode: seconds a validated token stays cached, which is also how long a token revoked
    in Keystone keeps working. Unset: the config file's, else auth_token's 300."""

    keystone_config_file: Path | None = None
    """Keystone mode: an oslo.config file whose ``[keystone_authtoken]`` section (Neutron's, as it
    is) configures auth_token; the ``keystone_*`` settings that are set override it."""

    keystone_threads: int = Field(default=8, ge=1, le=256)
    """Keystone mode: threads that run auth_token (a token not in the cache blocks one for a call to Keystone)."""

    read_your_writes_timeout: float = Field(default=2.0, ge=0, le=10)
    """Seconds a subnet pool update that names ``address_scope_id`` waits at most for topology to
    reflect it (networks' address scopes) before answering; past that it answers anyway and reads
    may lag for a moment. 0 answers at once. The wait is itself a request: it never lasts longer
    than ``request_timeout`` allows."""
