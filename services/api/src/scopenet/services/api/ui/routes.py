"""The UI's pages, as an aiohttp sub-application at ``/ui/`` with its own middleware: security
headers on every answer, a login redirect for anonymous callers, errors as HTML pages that say
what the API said (the same status and message)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
import structlog
from aiohttp import web

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError
from scopenet.services.api.auth import Identifies, Rejected, Unauthorized
from scopenet.services.api.controller import can_write
from scopenet.services.api.spec import Resource
from scopenet.services.api.ui import findings as findings_
from scopenet.services.api.ui import poolmap, scopemap, session
from scopenet.services.api.ui.data import UiData

log = structlog.get_logger("api.ui")
CALLER = web.RequestKey("ui_caller", object)
_STATIC = {"ui.css": "text/css"}

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("scopenet.services.api.ui", "templates"),
    autoescape=True,  # every template, the SVG ones too: names are user input
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["short"] = lambda s, n=26: s if len(str(s)) <= n else str(s)[: n - 1] + "…"


class LoginFirst(Exception):
    pass


def _whoami(request: web.Request) -> CallContext:
    ctx = request.get(CALLER)
    if not isinstance(ctx, CallContext):
        raise LoginFirst()
    return ctx


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    ctx = request.get(CALLER)
    ctx = ctx if isinstance(ctx, CallContext) else None
    body = ENV.get_template(template).render(
        me=ctx, csrf=session.csrf_token(request), writer=bool(ctx and can_write(ctx)), **values
    )
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    session.ensure_csrf(request, response)
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(auth: Identifies) -> Any:
    @web.middleware
    async def ui(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request[CALLER] = await session.identify(auth, request)
        try:
            response = await handler(request)
        except LoginFirst:
            target = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(f"/ui/login?next={target}", headers=session.SECURITY_HEADERS) from None
        except DomainError as exc:
            response = render(request, "error.html", status=exc.code, code=exc.code, message=str(exc.message))
        except web.HTTPException as exc:  # redirects (with their cookies) and 403/404: raised, as aiohttp wants
            exc.headers.update(session.SECURITY_HEADERS)
            raise
        response.headers.update(session.SECURITY_HEADERS)
        log.debug(
            "ui_page", path=request.path, status=response.status, ms=round(1000 * (time.perf_counter() - started))
        )
        return response

    return ui


def _safe_next(raw: str | None) -> str:
    """Only a path of this UI (no scheme, no host, no ``//``): an open redirect is a phishing aid."""
    if raw and raw.startswith("/ui/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/ui/"


def app(gw: Any, auth: Identifies, resources: list[Resource]) -> web.Application:
    data = UiData(gw, resources)
    tickets = session.Tickets()
    sub = web.Application(middlewares=[middleware(auth)])

    async def scope_map(request: web.Request) -> web.Response:
        ctx = _whoami(request)
        q = request.query.get("q", "")[:128]
        expand = frozenset(request.query.getall("expand", [])[:64])
        started = time.perf_counter()
        snap = await data.snapshot(ctx)
        fetched = time.perf_counter()
        smap = scopemap.build(snap, query=q, expanded=expand)
        response = render(request, "map.html", map=smap, q=q, expand=sorted(expand), highlight=False)
        response.headers["Server-Timing"] = (
            f"fetch;dur={1000 * (fetched - started):.1f}, render;dur={1000 * (time.perf_counter() - fetched):.1f}"
        )
        return response

    async def login_form(request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket")
        if ticket:
            token = tickets.redeem(ticket[:128])
            if token is None:
                return render(request, "login.html", status=401, error="This login link was used already or expired.",
                              next="/ui/")  # fmt: skip
            response = web.HTTPSeeOther("/ui/")
            session.start_session(response, token, secure=request.secure)
            raise response
        return render(request, "login.html", error=None, next=_safe_next(request.query.get("next")))

    async def login(request: web.Request) -> web.StreamResponse:
        form = await session.check_csrf(request)
        token = form.get("token", "").strip()
        ok = await session.check_token(auth, token) is not None
        if not ok:
            return render(request, "login.html", status=401, error="That token is not valid here.",
                          next=_safe_next(form.get("next")))  # fmt: skip
        response = web.HTTPSeeOther(_safe_next(form.get("next")))
        session.start_session(response, token, secure=request.secure)
        raise response

    async def logout(request: web.Request) -> web.StreamResponse:
        await session.check_csrf(request)
        response = web.HTTPSeeOther("/ui/login")
        session.end_session(response)
        raise response

    async def login_link(request: web.Request) -> web.Response:
        """``POST /ui/login-links`` with ``X-Auth-Token``: a one-time link that logs in as that token."""
        token = request.headers.get("X-Auth-Token", "")
        try:
            await auth.identify(request, "req-ui-link")
        except Rejected as answer:
            return answer.response
        except Unauthorized:
            raise web.HTTPUnauthorized(text="send the token the link should log in with as X-Auth-Token") from None
        path = f"/ui/login?ticket={tickets.mint(token)}" if token else "/ui/"
        link = {"url": f"{request.url.origin()}{path}", "expires_in": int(tickets.ttl)}
        return web.json_response({"login_link": link})

    async def pool_page(request: web.Request) -> web.Response:
        ctx = _whoami(request)
        pool, usage, history = await data.pool(ctx, request.match_info["id"])
        rows = [b for p in usage.get("prefixes", []) for b in p.get("blocks", [])]
        return render(request, "pool.html", pool=pool, usage=usage, space=poolmap.build(usage), rows=rows,
                      history=history["entries"], more=history.get("next_marker") is not None)  # fmt: skip

    async def subnet_form(request: web.Request, *, error: str | None = None, form: dict[str, str] | None = None,
                          status: int = 200) -> web.Response:  # fmt: skip
        ctx = _whoami(request)
        pool = await data.get(ctx, "subnetpools", request.match_info["id"])
        networks = [n for n in await data.list(ctx, "networks") if can_write(ctx)]
        values = form or {"cidr": request.query.get("cidr", "")[:64], "name": "", "network_id": ""}
        return render(request, "subnet_form.html", status=status, pool=pool, networks=networks, form=values,
                      error=error)  # fmt: skip

    async def subnet_new(request: web.Request) -> web.Response:
        return await subnet_form(request)

    async def subnet_create(request: web.Request) -> web.StreamResponse:
        ctx = _whoami(request)
        form = await session.check_csrf(request)
        pool = await data.get(ctx, "subnetpools", request.match_info["id"])
        item: dict[str, Any] = {"network_id": form.get("network_id", ""), "subnetpool_id": pool["id"],
                                "ip_version": pool["ip_version"], "cidr": form.get("cidr", "").strip()}  # fmt: skip
        if form.get("name"):
            item["name"] = form["name"]
        try:
            await data.create(ctx, "subnets", item)
        except DomainError as exc:
            return await subnet_form(request, error=str(exc.message), form=form, status=exc.code)
        raise web.HTTPSeeOther(f"/ui/pools/{pool['id']}")

    async def explain(request: web.Request) -> web.Response:
        ctx = _whoami(request)
        source, destination = request.query.get("source", "")[:64], request.query.get("destination", "")[:64]
        answer, smap, error = None, None, None
        if source and destination:
            try:
                answer = await data.explain(ctx, source=source.strip(), destination=destination.strip())
            except DomainError as exc:
                error = f"{exc.code}: {exc.message}"
            if answer is not None:
                hop_ids = frozenset(h["id"] for h in answer.get("hops", []) if h.get("id"))
                snap = await data.snapshot(ctx)
                subnets = {s["id"] for s in snap.subnets if s.get("network_id") in hop_ids}
                smap = scopemap.build(snap, only=hop_ids | subnets, highlight=hop_ids | subnets)
        return render(request, "explain.html", source=source, destination=destination, answer=answer, map=smap,
                      error=error, q="", expand=[], highlight=True)  # fmt: skip

    async def findings(request: web.Request) -> web.Response:
        ctx = _whoami(request)
        return render(request, "findings.html", f=findings_.build(await data.snapshot(ctx)))

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        text = jinja2.PackageLoader("scopenet.services.api.ui", "static").get_source(ENV, name)[0]
        return web.Response(text=text, content_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})

    sub.router.add_get("/", scope_map, allow_head=False)
    sub.router.add_get("/login", login_form, allow_head=False)
    sub.router.add_post("/login", login)
    sub.router.add_post("/logout", logout)
    sub.router.add_post("/login-links", login_link)
    sub.router.add_get("/pools/{id}", pool_page, allow_head=False)
    sub.router.add_get("/pools/{id}/subnets/new", subnet_new, allow_head=False)
    sub.router.add_post("/pools/{id}/subnets", subnet_create)
    sub.router.add_get("/explain", explain, allow_head=False)
    sub.router.add_get("/findings", findings, allow_head=False)
    sub.router.add_get("/static/{name}", static, allow_head=False)
    return sub
