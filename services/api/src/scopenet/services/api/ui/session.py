"""Who is looking at the UI, and the page safety every response gets.

- A session is a cookie holding the caller's API token (``HttpOnly``, ``SameSite=Strict``, path
  ``/ui``); each request is identified by the API's own authenticator with that token, so a page
  is exactly as allowed as the same call on ``/v2.0``.
- A one-time login link: a holder of a token asks ``POST /ui/login-links`` (``scopenet up`` and
  ``scopenet demo --keep`` do) and gets ``/ui/login?ticket=...``; the ticket lives in this API
  process's memory (as a digest) for ``TICKET_TTL`` seconds and is consumed by its first use. With
  several API replicas, open the link on the replica that made it.
- CSRF: double submit. A random ``scopenet_csrf`` cookie (``SameSite=Strict``) must equal the
  ``csrf_token`` field of every form that changes something, login included.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from scopenet.contracts.base import CallContext
from scopenet.services.api.auth import Identifies, Rejected, Unauthorized

SESSION_COOKIE = "scopenet_session"
CSRF_COOKIE = "scopenet_csrf"
NEW_CSRF = web.RequestKey("ui_new_csrf", str)
TICKET_TTL = 900.0
MAX_TICKETS = 1000
#: No inline script anywhere: the pages need none (forms and links only).
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class CsrfRejected(web.HTTPForbidden):
    def __init__(self) -> None:
        super().__init__(text="CSRF check failed: reload the page and submit the form again")


@dataclass
class Tickets:
    """One-time login secrets of this process: digest → (token, expiry)."""

    ttl: float = TICKET_TTL
    _live: dict[bytes, tuple[str, float]] = field(default_factory=dict)

    def mint(self, token: str) -> str:
        now = time.monotonic()
        self._live = {k: v for k, v in self._live.items() if v[1] > now}
        if len(self._live) >= MAX_TICKETS:  # bounded: a flood of requests cannot grow memory
            self._live.pop(next(iter(self._live)))
        ticket = secrets.token_urlsafe(32)
        self._live[hashlib.sha256(ticket.encode()).digest()] = (token, now + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The token, once: a second use, an expired or an unknown ticket is ``None``."""
        found = self._live.pop(hashlib.sha256(ticket.encode("utf-8", "surrogateescape")).digest(), None)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]


def csrf_token(request: web.Request) -> str:
    """The request's CSRF cookie, or a new one (``ensure_csrf`` sets it on the response)."""
    token = request.cookies.get(CSRF_COOKIE) or request.get(NEW_CSRF)
    if not token:
        token = request[NEW_CSRF] = secrets.token_urlsafe(32)
    return token


def ensure_csrf(request: web.Request, response: web.StreamResponse) -> None:
    if CSRF_COOKIE not in request.cookies and NEW_CSRF in request:
        response.set_cookie(CSRF_COOKIE, request[NEW_CSRF], path="/ui", httponly=True, samesite="Strict")


async def check_csrf(request: web.Request) -> dict[str, str]:
    """The posted form, if its ``csrf_token`` matches the cookie (else 403)."""
    form = {k: str(v) for k, v in (await request.post()).items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), form.get("csrf_token", "").encode()):
        raise CsrfRejected()
    return form


def start_session(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, path="/ui", httponly=True, samesite="Strict", secure=secure)


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/ui")


@dataclass(frozen=True)
class _Probe:
    """What an authenticator reads of a request (method, path, headers), carrying only the token:
    a session's cookie or a pasted token is checked as an ``X-Auth-Token`` GET of the API."""

    path: str
    headers: CIMultiDictProxy[str]
    method: str = "GET"


async def check_token(auth: Identifies, token: str) -> CallContext | None:
    """The caller this token is, as the API sees them (``None``: not valid here)."""
    if not token:
        return None
    probe = _Probe("/v2.0/networks", CIMultiDictProxy(CIMultiDict({"X-Auth-Token": token})))
    try:
        return await auth.identify(cast(web.Request, probe), f"req-ui-{secrets.token_hex(8)}")
    except (Unauthorized, Rejected):
        return None


async def identify(auth: Identifies, request: web.Request) -> CallContext | None:
    """The caller of a UI request, from its session cookie (``None``: log in first)."""
    if auth.mode == "noauth":
        return await auth.identify(request, f"req-ui-{secrets.token_hex(8)}")
    return await check_token(auth, request.cookies.get(SESSION_COOKIE, ""))
