"""Keystone tokens, validated by keystonemiddleware's ``auth_token``, the library Neutron uses.

``auth_token`` is WSGI middleware and the API is asyncio, so each request's token goes through
one ``AuthProtocol`` (built once, at start) wrapped around a WSGI app that only notes that it was
reached. The request's method, path and token headers become a synthetic WSGI environ, which runs
through ``AuthProtocol``. A token it has not seen is an HTTP call to Keystone that blocks, so that
runs on a small thread pool, never on the event loop. A token in the in-process cache costs only
CPU (~0.15 ms: auth_token's header work), so it runs on the loop itself, sparing the thread hop and
the GIL hand-offs that cost more than the check; should auth_token miss the cache there, the cache
raises before any call to Keystone is made and the request goes to the pool. Then either

- the inner app was reached: the token is valid, and the ``X-Project-Id`` / ``X-Roles`` that
  ``auth_token`` set become the caller's ``CallContext`` (the same policy as the tokens mode);
- or ``auth_token`` answered itself (401 with ``WWW-Authenticate: Keystone uri="..."`` for a
  missing, invalid, expired or revoked token; 503 when Keystone cannot be reached): that answer
  goes back to the caller as it is, exactly what a client of Neutron gets.

Everything else is ``auth_token``'s own behaviour: the service user, its catalog lookup, expiry
checks on every request, application credentials' access rules (checked against the real method
and path, service type ``network``) and the token cache.

Cache: with ``memcached_servers`` it is memcached, shared by every replica. Without, ``auth_token``
would fall back to one dict per pooled client, that is per thread that happened to need one, so a
token cached by one thread is unknown to the next. Instead it is handed one in-process cache
through its ``cache`` option (the environ key it takes a memcache-like client from): a bounded
dict behind a lock, whose entries live ``token_cache_time`` seconds. That is also how long a token
revoked in Keystone keeps working here, as it does in front of Neutron.

Verdicts: once auth_token has accepted a token, its verdict (project, roles, the token's expiry) is
attached to auth_token's own cache entry, and while that entry lives a request with the same token
is answered from it (expiry checked every time) without running auth_token's per-request header
rewriting again: the API's creation throughput stays within a few percent of the tokens mode. The
verdict dies with the entry (the revocation bound stays auth_token's cache time), and tokens whose
answer depends on the request (application credentials with access rules, service tokens) always
go through auth_token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import io
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import NotAuthorized
from scopenet.services.api.auth import Rejected, Unauthorized
from scopenet.services.api.settings import ApiSettings
from scopenet.services.api.tokencache import NeedsKeystone, SharedTokenCache, Verdict

#: ``auth_token``'s config group, as in Neutron's ``neutron.conf``.
GROUP = "keystone_authtoken"
#: The environ key ``auth_token`` takes the shared in-process cache from (its ``cache`` option).
CACHE_KEY = "scopenet.token_cache"
#: The header names ``auth_token`` reads; every other header of the request stays out of its way.
TOKEN_HEADERS = ("X-Auth-Token", "X-Service-Token")
_REACHED = "scopenet.authenticated"


@dataclass(frozen=True)
class KeystoneConfig:
    """What ``auth_token`` is configured with (the API's ``keystone_*`` settings)."""

    auth_url: str | None
    """Keystone's identity endpoint the service user logs in to (``auth_url``)."""
    www_authenticate_uri: str | None
    """Where clients are told to get a token (``WWW-Authenticate``); unset: ``auth_url``."""
    username: str | None
    password: str | None
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    interface: str | None = None
    """Which catalog endpoint of Keystone the service user calls; unset: auth_token's ``internal``."""
    memcached_servers: list[str] = field(default_factory=list)
    token_cache_time: int | None = None
    """Seconds a validated token stays cached; unset: the config file's, else auth_token's 300."""
    config_file: Path | None = None
    """An oslo.config file with a ``[keystone_authtoken]`` section (Neutron's), read first."""
    threads: int = 8
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        if self.config_file is not None and not self.config_file.is_file():
            raise ValueError(f"keystone config file {self.config_file} does not exist")
        if self.config_file is None:
            missing = [n for n in ("auth_url", "username", "password") if not getattr(self, n)]
            if missing:
                names = ", ".join(f"SCOPENET_KEYSTONE_{n.upper()}" for n in missing)
                raise ValueError(f"keystone auth needs {names} (or SCOPENET_KEYSTONE_CONFIG_FILE)")
        if self.threads < 1 or (self.token_cache_time or 0) < 0 or self.cache_size < 1:
            raise ValueError("keystone threads and cache size must be positive, token_cache_time not negative")

    def overrides(self) -> dict[str, Any]:
        """``[keystone_authtoken]`` options the settings set (they win over the config file)."""
        values: dict[str, Any] = {
            "auth_type": "password" if self.auth_url or self.config_file is None else None,
            "auth_url": self.auth_url,
            "www_authenticate_uri": self.www_authenticate_uri or self.auth_url,
            "username": self.username,
            "password": self.password,
            "project_name": self.project_name if self.auth_url else None,
            "user_domain_name": self.user_domain_name if self.auth_url else None,
            "project_domain_name": self.project_domain_name if self.auth_url else None,
            "region_name": self.region_name,
            "interface": self.interface,
            "memcached_servers": self.memcached_servers or None,
            "token_cache_time": self.token_cache_time,
            "service_type": "network",  # application credentials' access rules name this service
        }
        return {k: v for k, v in values.items() if v is not None}


def _oslo_config(config: KeystoneConfig) -> Any:
    """A private oslo.config object (never the process-global one) with auth_token's options,
    the password plugin's, the config file if any, and the settings over it."""
    from keystoneauth1 import loading
    from keystonemiddleware import auth_token
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    loading.register_auth_conf_options(conf, GROUP)
    files = [str(config.config_file)] if config.config_file else []
    conf([], project="scopenet", default_config_files=files, validate_default_values=True)
    plugin = config.overrides().get("auth_type") or conf[GROUP].auth_type or "password"
    conf.register_opts(loading.get_auth_plugin_conf_options(plugin), group=GROUP)
    for name, value in config.overrides().items():
        conf.set_override(name, value, group=GROUP)
    group = conf[GROUP]
    if not group.www_authenticate_uri and getattr(group, "auth_url", None):
        conf.set_override("www_authenticate_uri", group.auth_url, group=GROUP)
    return conf


def _reached(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    environ[_REACHED] = True
    start_response("204 No Content", [])
    return [b""]


class KeystoneAuthenticator:
    """``CallContext`` from a Keystone token, or ``auth_token``'s own answer (``Rejected``)."""

    mode = "keystone"

    def __init__(self, config: KeystoneConfig) -> None:
        from keystonemiddleware import auth_token

        self.config = config
        conf = _oslo_config(config)
        # memcached (from the settings or the config file) when named, else the shared in-process cache
        self._cache = None if conf[GROUP].memcached_servers else SharedTokenCache(config.cache_size)
        local: dict[str, Any] = {"oslo_config_config": conf}
        if self._cache is not None:
            local["cache"] = CACHE_KEY
        self._protocol = auth_token.AuthProtocol(_reached, local)
        # A 401 names www_authenticate_uri; unknown, auth_token would ask Keystone for it (I/O).
        self._inline = bool(conf[GROUP].www_authenticate_uri)
        self._pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="keystone-auth")
        self._keys: dict[bytes, str] = {}
        """Digest of a token -> the key of auth_token's cache entry for it."""
        group = conf[GROUP]
        self.described = {
            "auth_url": getattr(group, "auth_url", None),
            "www_authenticate_uri": group.www_authenticate_uri,
            "cache": "memcached" if self._cache is None else "in-process",
            "token_cache_time": group.token_cache_time,
        }
        """How auth_token ended up configured (logged at start; no secrets)."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def identify(self, request: web.Request, request_id: str) -> CallContext:
        if (known := self._known(request.headers, request_id)) is not None:
            return known
        if self._cache is not None and self._inline:
            try:
                with self._cache.cached_only():
                    return self.check(request.method, request.path, request.headers, request_id)
            except NeedsKeystone:
                pass  # not cached (or aged out): Keystone's turn, off the loop
        loop = asyncio.get_running_loop()
        check = functools.partial(self.check, request.method, request.path, request.headers, request_id)
        return await loop.run_in_executor(self._pool, check)

    def check(self, method: str, path: str, headers: Mapping[str, str], request_id: str) -> CallContext:
        """Blocking (a thread's work): the caller of a request with these headers, or ``Rejected``."""
        environ = self._environ(method, path, headers)
        status, answer_headers, body = self._run(environ)
        if not environ.get(_REACHED):
            status_code = int(status.split()[0])
            raise Rejected(web.Response(status=status_code, body=body, headers=_answer_headers(answer_headers)))
        context = context_of(environ, request_id)
        self._remember(headers, environ, context)
        return context

    def _known(self, headers: Mapping[str, str], request_id: str) -> CallContext | None:
        """The caller from a verdict auth_token reached about this token, while it holds."""
        token = headers.get("X-Auth-Token")
        if self._cache is None or not token or "X-Service-Token" in headers:
            return None
        verdict = self._cache.verdict(self._keys.get(_digest(token)))
        if verdict is None or verdict.expires <= time.time():
            return None  # auth_token decides (an expired token: its 401)
        return CallContext(
            project_id=verdict.project_id, roles=list(verdict.roles), request_id=request_id, user_id=verdict.user_id
        )

    def _remember(self, headers: Mapping[str, str], environ: Mapping[str, Any], context: CallContext) -> None:
        token = headers.get("X-Auth-Token")
        key = self._cache.last_key() if self._cache is not None else None
        if self._cache is None or key is None or not token or "X-Service-Token" in headers:
            return
        data = (environ.get("keystone.token_info") or {}).get("token") or {}
        if (data.get("application_credential") or {}).get("access_rules"):
            return  # the answer depends on the method and path: auth_token checks every request
        try:
            expires = dt.datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            return
        if len(self._keys) >= self.config.cache_size:
            self._keys.clear()  # only shortcuts: the next request of each token takes auth_token's path
        self._keys[_digest(token)] = key
        self._cache.remember(key, Verdict(context.project_id, tuple(context.roles), expires, context.user_id))

    def _environ(self, method: str, path: str, headers: Mapping[str, str]) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "scopenet-api",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self._cache is not None:
            environ[CACHE_KEY] = self._cache
        for name in TOKEN_HEADERS:
            value = headers.get(name)
            if value is not None:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ

    def _run(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """In a pool thread: the environ through ``AuthProtocol``; its status, headers and body."""
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = status, headers

        body = b"".join(self._protocol(environ, start_response))
        return answer["status"], answer["headers"], body


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _answer_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """``auth_token``'s headers that mean something to the client (the rest aiohttp sets itself)."""
    keep = {"www-authenticate", "content-type", "retry-after"}
    return {k: v for k, v in headers if k.lower() in keep}


def context_of(environ: Mapping[str, Any], request_id: str) -> CallContext:
    """The caller, from the headers ``auth_token`` set for a valid token.

    Keystone expands implied roles into the token (admin implies member implies reader by
    default), so the roles are the token's as they are. scopenet's resources belong to projects:
    a token scoped to a domain or to the system has no project to act in, and is refused.
    """
    project = environ.get("HTTP_X_PROJECT_ID")
    roles = [r.strip() for r in str(environ.get("HTTP_X_ROLES", "")).split(",") if r.strip()]
    if not project:
        raise NotAuthorized("scopenet needs a project-scoped token (this one is scoped to a domain or the system)")
    try:
        return CallContext(
            project_id=project, roles=roles, request_id=request_id, user_id=environ.get("HTTP_X_USER_ID") or None
        )
    except ValidationError:
        raise Unauthorized("the token's project or roles are not valid here") from None


def config_from(settings: ApiSettings) -> KeystoneConfig:
    """The ``keystone_*`` settings as auth_token's configuration (raises ``ValueError`` at start)."""
    return KeystoneConfig(
        auth_url=settings.keystone_auth_url,
        www_authenticate_uri=settings.keystone_www_authenticate_uri,
        username=settings.keystone_username,
        password=settings.keystone_password,
        project_name=settings.keystone_project_name,
        user_domain_name=settings.keystone_user_domain_name,
        project_domain_name=settings.keystone_project_domain_name,
        region_name=settings.keystone_region_name,
        interface=settings.keystone_interface,
        memcached_servers=list(settings.keystone_memcached_servers),
        token_cache_time=settings.keystone_token_cache_time,
        config_file=settings.keystone_config_file,
        threads=settings.keystone_threads,
    )
