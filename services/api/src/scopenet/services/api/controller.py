"""The generic Neutron controller: one instance per resource serves its collection, its members,
their ``/tags`` sub-resource and their member actions.

Order of checks follows Neutron's (docs/neutron.md#the-api-layer): body shape and attribute rules first (so a project
gets 400 for a read-only attribute even on someone else's object), then the id (a string that is
not a UUID is simply not found), then the service, which owns visibility and ownership.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from aiohttp import web

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, DomainError, NotAuthorized, NotFound
from scopenet.services.api import query as lq
from scopenet.services.api.attrs import Attr, as_list, as_string
from scopenet.services.api.auth import CONTEXT
from scopenet.services.api.spec import PARENT, Resource, View

_TAGS = as_list(as_string(255), max_items=50)


def ctx_of(request: web.Request) -> CallContext:
    return request[CONTEXT]


def can_write(ctx: CallContext) -> bool:
    return bool({"admin", "member"} & set(ctx.roles))


def require_writer(ctx: CallContext, action: str, resource: Resource) -> None:
    """Neutron's default policy: writes need the admin or the member role (a reader only reads)."""
    if not can_write(ctx):
        raise NotAuthorized(f"rule:{action}_{resource.singular} is disallowed by policy")


async def require_writer_on(ctx: CallContext, action: str, resource: Resource, id_: str) -> None:
    """``require_writer`` on an existing object: a reader refused a write on something it cannot
    see is told 404, not 403 (rule 6), so the answer says nothing it could not read."""
    if not can_write(ctx):
        await resource.backend.get(ctx, id_)
        require_writer(ctx, action, resource)


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("Resource body required", type="HTTPBadRequest")
    try:
        # orjson also refuses what could not travel on as UTF-8 (a lone "\ud800") and nesting
        # deeper than 1024 levels.
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Malformed request body: the body is not valid JSON", type="HTTPBadRequest") from None


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def if_match(request: web.Request, resource: Resource) -> int | None:
    """``If-Match: revision_number=N`` (docs/neutron.md#revision-numbers); other etags are not ours and are ignored."""
    etags = [p.strip() for h in request.headers.getall("If-Match", []) for p in h.split(",")]
    revs = [e.split("=", 1)[1] for e in etags if e.startswith("revision_number=")]
    if not revs:
        return None
    if len(revs) > 1:
        raise BadRequest("Multiple revision_number etags are not supported.", type="HTTPBadRequest")
    if not resource.revisions:
        raise BadRequest("Revision matching not supported for this resource", type="HTTPBadRequest")
    if not re.fullmatch(r"[0-9]{1,18}", revs[0]):
        raise BadRequest("Revision number etags must be integers", type="HTTPBadRequest")
    return int(revs[0])


class Controller:
    def __init__(self, resource: Resource) -> None:
        self.r = resource

    def routes(self, prefix: str = "/v2.0") -> list[web.RouteDef]:
        base = f"{prefix}/{self.r.collection}"
        item = base + "/{id}"
        out = [web.get(base, self.index, allow_head=False), web.get(item, self.show, allow_head=False)]
        if self.r.writable:
            out += [web.post(base, self.create), web.put(item, self.update), web.delete(item, self.delete)]
        if self.r.tags:
            out += [
                web.get(item + "/tags", self.tags_get, allow_head=False),
                web.put(item + "/tags", self.tags_put),
                web.delete(item + "/tags", self.tags_delete_all),
                web.get(item + "/tags/{tag}", self.tag_get, allow_head=False),
                web.put(item + "/tags/{tag}", self.tag_put),
                web.delete(item + "/tags/{tag}", self.tag_delete),
            ]
        for name in self.r.actions:
            out.append(web.put(f"{item}/{name}", self._action(name)))
        for name in self.r.read_actions:
            out.append(web.get(f"{item}/{name}", self._read_action(name), allow_head=False))
        if self.r.parent is not None:
            out = [web.RouteDef(d.method, d.path, self._with_parent(d.handler), d.kwargs) for d in out]
        return out

    def _with_parent(self, handler: Any) -> Any:
        """A sub-resource's handler: the parent's id (404 unless a UUID) is set for the backend."""
        assert self.r.parent is not None and self.r.parent_not_found is not None
        key, (type_, text) = self.r.parent, self.r.parent_not_found

        async def run(request: web.Request) -> web.StreamResponse:
            raw = request.match_info[key]
            try:
                parent = str(uuid.UUID(raw))
            except ValueError:
                raise NotFound(text.format(raw[:64]), type=type_) from None
            token = PARENT.set(parent)
            try:
                return await handler(request)  # type: ignore[no-any-return]
            finally:
                PARENT.reset(token)

        return run

    # ------------------------------------------------------------ body rules

    def _id(self, request: web.Request) -> str:
        raw = request.match_info["id"]
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            raise self.r.not_found(raw[:64]) from None

    def _attributes(self, item: Any) -> list[tuple[str, Attr, Any]]:
        """The body's attributes with their declarations (400 naming the first one the resource lacks)."""
        if not isinstance(item, dict):
            raise BadRequest(f"Invalid data for {self.r.singular}: expected an object", type="HTTPBadRequest")
        known = [(key, self.r.attr(key), value) for key, value in item.items()]
        unknown = [key for key, attr, _ in known if attr is None]
        if unknown:
            raise BadRequest(
                f"Unrecognized attribute(s) '{', '.join(unknown)}'", type="HTTPBadRequest", field=unknown[0]
            )
        return [(key, attr, value) for key, attr, value in known if attr is not None]

    def _post_item(self, ctx: CallContext, item: Any) -> View:
        out: View = {}
        for key, attr, value in self._attributes(item):
            if not attr.post:
                raise BadRequest(f"Attribute '{key}' not allowed in POST", type="HTTPBadRequest", field=key)
            out[key] = attr.convert(key, value)
        for attr in self.r.attrs:
            if attr.required and attr.name not in out:
                raise BadRequest(
                    f"Failed to parse request. Required attribute '{attr.name}' not specified",
                    type="HTTPBadRequest",
                    field=attr.name,
                )
        if "project_id" in out and "tenant_id" in out and out["project_id"] != out["tenant_id"]:
            raise BadRequest("'project_id' and 'tenant_id' do not match", type="HTTPBadRequest", field="project_id")
        owner = out.get("project_id", out.get("tenant_id"))
        if owner is not None and owner != ctx.project_id and not ctx.is_admin:
            # Here, for every resource (neutron-lib's populate_project_id, before policy): a service
            # that ignores the key (RBAC entries belong to their object's owner) must not let a
            # project name another and succeed.
            raise BadRequest(
                "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request "
                "requires admin privileges",
                type="HTTPBadRequest",
                field="project_id",
            )
        if not ctx.is_admin:
            for attr in self.r.attrs:
                if attr.admin_post and attr.name in out and out[attr.name] != attr.default:
                    raise NotAuthorized(
                        f"(rule:create_{self.r.singular} and rule:create_{self.r.singular}:{attr.name}) "
                        "is disallowed by policy"
                    )
        return out

    def _put_item(self, item: Any) -> View:
        out: View = {}
        for key, attr, value in self._attributes(item):
            if not attr.put:
                raise BadRequest(f"Cannot update read-only attribute {key}", type="HTTPBadRequest", field=key)
            out[key] = attr.convert(key, value)
        return out

    async def _may_update(self, ctx: CallContext, id_: str, item: View) -> None:
        """The writer role, and admin for admin-only attributes: refused with 403 only when the
        caller can see the object, else 404 (rule 6), as Neutron checks policy on the
        object it has fetched."""
        await require_writer_on(ctx, "update", self.r, id_)
        if ctx.is_admin:
            return
        denied = [attr.name for attr in self.r.attrs if attr.admin_put and attr.name in item]
        if denied:
            await self.r.backend.get(ctx, id_)
            raise NotAuthorized(
                f"(rule:update_{self.r.singular} and rule:update_{self.r.singular}:{denied[0]}) is disallowed by policy"
            )

    def _wrapped(self, body: Any, key: str) -> Any:
        if not isinstance(body, dict) or key not in body:
            raise BadRequest(f"Unable to find '{key}' in request body", type="HTTPBadRequest", field=key)
        if len(body) > 1:
            extra = [k for k in body if k != key]
            raise BadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'", type="HTTPBadRequest")
        return body[key]

    # ------------------------------------------------------------ verbs

    async def index(self, request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        q = lq.parse(self.r, request.query)
        if isinstance(self.r.backend, lq.PagedBackend):
            if q.marker is not None:
                try:
                    q.marker = str(uuid.UUID(q.marker))
                except ValueError:
                    raise self.r.not_found(q.marker) from None  # no item has that id
            page = await self.r.backend.query(ctx, q)
        else:
            items = await self.r.backend.list(ctx, q.filters)
            page = lq.paginate(self.r, lq.order(lq.select(self.r, items, q), q), q)
        body: dict[str, Any] = {
            self.r.plural: [lq.project(self.r.present(v, "list", ctx), q.fields) for v in page.items]
        }
        links = lq.links(self.r, request.url, page, q)
        if links:
            body[f"{self.r.plural}_links"] = links
        return json_response(body)

    async def show(self, request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        fields = [f for v in request.query.getall("fields", []) for f in v.split(",") if f]
        view = await self.r.backend.get(ctx, self._id(request))
        return json_response({self.r.singular: lq.project(self.r.present(view, "show", ctx), fields)})

    async def create(self, request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        body = await read_json(request)
        if isinstance(body, dict) and self.r.plural in body and self.r.singular not in body and self.r.bulk:
            items = self._wrapped(body, self.r.plural)
            if not isinstance(items, list) or not items:
                raise BadRequest(f"Invalid data for {self.r.plural}: expected a non-empty list", type="HTTPBadRequest")
            require_writer(ctx, "create", self.r)
            checked = [self._post_item(ctx, i) for i in items]
            return json_response({self.r.plural: await self._bulk(ctx, checked)}, status=201)
        view = await self.create_item(ctx, self._wrapped(body, self.r.singular))
        return json_response({self.r.singular: view}, status=201)

    async def create_item(self, ctx: CallContext, item: Any) -> View:
        """One item's create, as ``POST`` does it (body rules, then policy, then the service); the
        web UI's forms come through here too."""
        checked = self._post_item(ctx, item)
        require_writer(ctx, "create", self.r)
        return self.r.present(await self.r.backend.create(ctx, checked), "create", ctx)

    async def _bulk(self, ctx: CallContext, items: list[View]) -> list[View]:
        """All or nothing: on the first failure the ones already created are deleted again."""
        done: list[View] = []
        try:
            for item in items:
                done.append(await self.r.backend.create(ctx, item))
        except BaseException:
            for view in reversed(done):
                try:
                    await self.r.backend.delete(ctx, view["id"], if_revision=None)
                except (DomainError, Exception):  # best effort: the original error is what matters
                    pass
            raise
        return [self.r.present(v, "create", ctx) for v in done]

    async def update(self, request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        body = await read_json(request)
        item = self._put_item(self._wrapped(body, self.r.singular))
        rev = if_match(request, self.r)
        id_ = self._id(request)
        await self._may_update(ctx, id_, item)
        view = await self.r.backend.update(ctx, id_, item, if_revision=rev)
        return json_response({self.r.singular: self.r.present(view, "update", ctx)})

    async def delete(self, request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        rev = if_match(request, self.r)
        id_ = self._id(request)
        await require_writer_on(ctx, "delete", self.r, id_)
        await self.r.backend.delete(ctx, id_, if_revision=rev)
        return web.Response(status=204)

    def _action(self, name: str) -> Any:
        action = self.r.actions[name]

        async def handler(request: web.Request) -> web.Response:
            ctx = ctx_of(request)
            body = await read_json(request)
            id_ = self._id(request)
            await require_writer_on(ctx, name, self.r, id_)
            status, out = await action(ctx, id_, body)
            return json_response(out, status=status)

        return handler

    def _read_action(self, name: str) -> Any:
        action = self.r.read_actions[name]

        async def handler(request: web.Request) -> web.Response:
            status, out = await action(ctx_of(request), self._id(request), None)
            return json_response(out, status=status)

        return handler

    # ------------------------------------------------------------ tags (docs/neutron.md#tags)

    async def _set_tags(self, ctx: CallContext, id_: str, change: Any) -> list[str]:
        """Read-modify-write under compare-and-swap on the revision, retried on a lost race."""
        for attempt in range(5):
            view = await self.r.backend.get(ctx, id_)
            tags = list(view.get("tags") or [])
            new = change(tags)
            if new == tags and (ctx.is_admin or view.get("project_id") == ctx.project_id):
                return tags
            # On someone else's object even a change that changes nothing goes to the service,
            # which says whether this caller may change it at all (403, as Neutron's policy does).
            try:
                await self.r.backend.update(ctx, id_, {"tags": new}, if_revision=view.get("revision_number"))
                return list(new)
            except DomainError as exc:
                if exc.code != 412 or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _tag(self, request: web.Request) -> str:
        tag: str = request.match_info["tag"]
        return str(_TAGS("tags", [tag])[0])

    async def tags_get(self, request: web.Request) -> web.Response:
        view = await self.r.backend.get(ctx_of(request), self._id(request))
        return json_response({"tags": view.get("tags") or []})

    async def tags_put(self, request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        body = await read_json(request)
        if not isinstance(body, dict) or set(body) != {"tags"}:
            raise BadRequest('Invalid tags body: expected {"tags": [...]}', type="HTTPBadRequest", field="tags")
        tags = list(dict.fromkeys(_TAGS("tags", body["tags"])))
        id_ = self._id(request)
        await require_writer_on(ctx, "update", self.r, id_)
        return json_response({"tags": await self._set_tags(ctx, id_, lambda _old: tags)})

    async def tags_delete_all(self, request: web.Request) -> web.Response:
        ctx, id_ = ctx_of(request), self._id(request)
        await require_writer_on(ctx, "update", self.r, id_)
        await self._set_tags(ctx, id_, lambda _old: [])
        return web.Response(status=204)

    async def tag_get(self, request: web.Request) -> web.Response:
        tag, id_ = self._tag(request), self._id(request)
        view = await self.r.backend.get(ctx_of(request), id_)
        if tag not in (view.get("tags") or []):
            raise self._tag_not_found(tag, id_)
        return web.Response(status=204)

    async def tag_put(self, request: web.Request) -> web.Response:
        ctx, tag, id_ = ctx_of(request), self._tag(request), self._id(request)
        await require_writer_on(ctx, "update", self.r, id_)

        def add(old: list[str]) -> list[str]:
            if tag in old:
                return old
            if len(old) >= 50:
                raise BadRequest("Invalid input for tags. Reason: more than 50 tags.", type="HTTPBadRequest")
            return [*old, tag]

        await self._set_tags(ctx, id_, add)
        return web.Response(status=201)

    async def tag_delete(self, request: web.Request) -> web.Response:
        ctx, tag, id_ = ctx_of(request), self._tag(request), self._id(request)
        await require_writer_on(ctx, "update", self.r, id_)

        def remove(old: list[str]) -> list[str]:
            if tag not in old:
                raise self._tag_not_found(tag, id_)
            return [t for t in old if t != tag]

        await self._set_tags(ctx, id_, remove)
        return web.Response(status=204)

    def _tag_not_found(self, tag: str, id_: str) -> NotFound:
        return NotFound(f"Tag {tag} could not be found for {self.r.singular} {id_}.", type="TagNotFound")
