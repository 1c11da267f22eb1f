"""Who is calling: ``X-Auth-Token`` looked up in a tokens file, or (only when asked) no auth.
(Keystone tokens: ``keystone.py``, behind the same middleware.)

Tokens file: YAML (JSON is YAML too) ``{tokens: {<token>: {project_id: <id>, roles: [...]}}}``; an entry
may name its ``user_id`` (kept in audit trails such as a pool's allocation history).
Tokens are kept as SHA-256 digests and every lookup compares the caller's digest with *every*
stored digest using ``hmac.compare_digest``, so the time taken says nothing about how close a
guess was. Tokens are never logged; only the project id of a successful match is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from aiohttp import web
from pydantic import ValidationError

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError

#: Paths anyone may read: the version document, the API description and the probes.
PUBLIC = ("/", "/openapi.json", "/livez", "/readyz", "/metrics")
NOAUTH_PROJECT = "0" * 32
CONTEXT = web.RequestKey("context", CallContext)
REQUEST_ID = web.RequestKey("request_id", str)


class Unauthorized(DomainError):
    code = 401
    type = "HTTPUnauthorized"


class Rejected(Exception):
    """An authenticator answers the request itself (Keystone's 401 with ``WWW-Authenticate``)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class Identifies(Protocol):
    """What the middleware asks: who sends this request (raises ``Unauthorized`` or ``Rejected``)."""

    mode: str

    async def identify(self, request: web.Request, request_id: str) -> CallContext: ...

    def close(self) -> None:
        """Release what it holds (threads, connections); called when the API stops."""


class TokensFileError(ValueError):
    """The tokens file cannot be used; raised at start so a bad file fails fast."""


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    context: CallContext


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def load_tokens(path: Path) -> list[_Entry]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TokensFileError(f"cannot read tokens file {path}: {exc}") from None
    tokens = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(tokens, dict) or not tokens:
        raise TokensFileError(
            f"{path}: expected {{tokens: {{<token>: {{project_id, roles}}}}}} with one token at least"
        )
    out = []
    for i, (token, spec) in enumerate(tokens.items()):
        if not isinstance(token, str) or len(token) < 8:
            raise TokensFileError(f"{path}: token #{i + 1} must be a string of 8 characters or more")
        if not isinstance(spec, dict):
            raise TokensFileError(f"{path}: token #{i + 1} must map to {{project_id, roles}}")
        try:
            user = spec.get("user_id")
            ctx = CallContext(
                project_id=str(spec.get("project_id", "")),
                roles=list(spec.get("roles") or []),
                user_id=str(user) if user is not None else None,
            )
        except (ValidationError, TypeError) as exc:
            raise TokensFileError(f"{path}: token #{i + 1}: {exc}") from None
        out.append(_Entry(_digest(token), ctx))
    return out


def write_tokens_file(path: Path) -> dict[str, Any]:
    """Create a tokens file with an admin token and a member token of a demo project (mode 0600).

    Returns the document written. Called by ``scopenet up`` on first start only.
    """
    doc = {
        "tokens": {
            secrets.token_urlsafe(32): {"project_id": uuid.uuid4().hex, "roles": ["admin", "member", "reader"]},
            secrets.token_urlsafe(32): {"project_id": uuid.uuid4().hex, "roles": ["member", "reader"]},
        }
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# scopenet HTTP API tokens: X-Auth-Token -> project and roles. Keep this file secret.\n")
        yaml.safe_dump(doc, fh, sort_keys=False)
    return doc


class Authenticator:
    """Turns a request's headers into a ``CallContext`` (or a 401)."""

    def __init__(self, mode: str, tokens: list[_Entry] | None = None) -> None:
        if mode not in ("tokens", "noauth"):
            raise ValueError(f"unknown auth mode {mode!r}")
        if mode == "tokens" and not tokens:
            raise TokensFileError("tokens mode needs a tokens file with at least one token")
        self.mode = mode
        self._tokens = tokens or []

    def context(self, headers: Any, request_id: str) -> CallContext:
        if self.mode == "noauth":
            return self._noauth(headers, request_id)
        token = headers.get("X-Auth-Token")
        if not token:
            raise Unauthorized("Authentication required: send an X-Auth-Token header")
        digest = _digest(token)
        found: CallContext | None = None
        for entry in self._tokens:  # no early exit: constant time over the whole table
            if hmac.compare_digest(entry.digest, digest):
                found = entry.context
        if found is None:
            raise Unauthorized("Authentication failed: unknown token")
        return found.model_copy(update={"request_id": request_id})

    async def identify(self, request: web.Request, request_id: str) -> CallContext:
        return self.context(request.headers, request_id)

    def close(self) -> None:
        """Nothing to release: the tokens live in memory."""

    def _noauth(self, headers: Any, request_id: str) -> CallContext:
        project = headers.get("X-Project-Id") or headers.get("X-Tenant-Id") or NOAUTH_PROJECT
        roles_hdr = headers.get("X-Roles")
        roles = [r.strip() for r in roles_hdr.split(",") if r.strip()] if roles_hdr is not None else ["admin"]
        try:
            return CallContext(
                project_id=project, roles=roles, request_id=request_id, user_id=headers.get("X-User-Id") or None
            )
        except ValidationError:
            raise Unauthorized("X-Project-Id, X-Roles or X-User-Id is not valid") from None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_ui(path: str) -> bool:
    """The web UI identifies its callers itself, from its session cookie (``ui/session.py``)."""
    return path == "/ui" or path.startswith("/ui/")


def auth_middleware(auth: Identifies) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = f"req-{uuid.uuid4()}"
        request[REQUEST_ID] = rid
        path = request.path.rstrip("/") or "/"
        if path not in PUBLIC and not _is_ui(path):
            try:
                request[CONTEXT] = await auth.identify(request, rid)
            except Rejected as answer:
                return answer.response
        return await handler(request)

    return middleware
