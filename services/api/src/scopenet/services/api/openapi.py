"""``/openapi.json``: an OpenAPI 3.0 description generated from the same resource table that
serves the requests, so the document cannot describe an attribute the API does not accept."""

from __future__ import annotations

from typing import Any

from scopenet.services.api import ipviews, quotas, reachability
from scopenet.services.api.attrs import schema_of
from scopenet.services.api.spec import Resource

_ERROR = {
    "type": "object",
    "required": ["NeutronError"],
    "properties": {
        "NeutronError": {
            "type": "object",
            "required": ["type", "message", "detail"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}},
        }
    },
}
_ERRORS = {"default": {"description": "Neutron error", "content": {"application/json": {"schema": _ERROR}}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIST_PARAMS = [
    {"name": "fields", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "explode": True},
    {"name": "sort_key", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "explode": True},
    {
        "name": "sort_dir",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string", "enum": ["asc", "desc"]}},
        "explode": True,
    },
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "marker", "in": "query", "schema": {"type": "string"}},
    {"name": "page_reverse", "in": "query", "schema": {"type": "boolean"}},
]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _wrapped(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: inner}}


def _item(r: Resource) -> dict[str, Any]:
    # ``id`` is not required: ``fields=`` may leave it out.
    return {"type": "object", "properties": {"id": {"type": "string"}}}


def _links(r: Resource) -> dict[str, Any]:
    """OpenAPI links from a created item to the operations on it (stateful testing follows them)."""
    param = {"id": f"$response.body#/{r.singular}/id"}
    ops = [f"show_{r.singular}", f"update_{r.singular}", f"delete_{r.singular}"]
    ops += [f"{name}_{r.singular}" for name in (*r.actions, *r.read_actions)]
    return {op: {"operationId": op, "parameters": param} for op in ops}


def _body(r: Resource, verb: str) -> dict[str, Any]:
    allowed = [a for a in r.attrs if (a.post if verb == "post" else a.put)]
    inner: dict[str, Any] = {
        "type": "object",
        "properties": {a.name: schema_of(a.convert) for a in allowed},
        "additionalProperties": False,
    }
    required = [a.name for a in allowed if a.required and verb == "post"]
    if required:
        inner["required"] = required
    return _wrapped(r.singular, inner)


def _paths(r: Resource) -> dict[str, Any]:
    base, item = f"/v2.0/{r.collection}", f"/v2.0/{r.collection}/{{id}}"
    tag = r.collection
    one = _wrapped(r.singular, _item(r))
    many = _wrapped(r.plural, {"type": "array", "items": _item(r)})
    paths: dict[str, Any] = {
        base: {
            "get": {
                "tags": [tag],
                "operationId": f"list_{r.plural}",
                "summary": f"List {r.plural} (filters: any filterable attribute)",
                "parameters": _LIST_PARAMS,
                "responses": {"200": _json(many, "the visible items"), **_ERRORS},
            }
        },
        item: {
            "parameters": [_ID],
            "get": {
                "tags": [tag],
                "operationId": f"show_{r.singular}",
                "responses": {"200": _json(one, "the item"), **_ERRORS},
            },
        },
    }
    if r.writable:
        paths[base]["post"] = {
            "tags": [tag],
            "operationId": f"create_{r.singular}",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _body(r, "post")}}},
            "responses": {"201": {**_json(one, "created"), "links": _links(r)}, **_ERRORS},
        }
        paths[item]["put"] = {
            "tags": [tag],
            "operationId": f"update_{r.singular}",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _body(r, "put")}}},
            "responses": {"200": _json(one, "updated"), **_ERRORS},
        }
        paths[item]["delete"] = {
            "tags": [tag],
            "operationId": f"delete_{r.singular}",
            "responses": {"204": {"description": "deleted"}, **_ERRORS},
        }
    if r.tags:
        tags_body = {
            "type": "object",
            "required": ["tags"],
            "properties": {"tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 255}}},
        }
        tag_param = {"name": "tag", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 255}}
        paths[item + "/tags"] = {
            "parameters": [_ID],
            "get": {"tags": [tag], "responses": {"200": _json(tags_body, "the tags"), **_ERRORS}},
            "put": {
                "tags": [tag],
                "requestBody": {"required": True, "content": {"application/json": {"schema": tags_body}}},
                "responses": {"200": _json(tags_body, "the new tags"), **_ERRORS},
            },
            "delete": {"tags": [tag], "responses": {"204": {"description": "no tags left"}, **_ERRORS}},
        }
        paths[item + "/tags/{tag}"] = {
            "parameters": [_ID, tag_param],
            "get": {"tags": [tag], "responses": {"204": {"description": "the tag is set"}, **_ERRORS}},
            "put": {"tags": [tag], "responses": {"201": {"description": "the tag is set"}, **_ERRORS}},
            "delete": {"tags": [tag], "responses": {"204": {"description": "the tag is gone"}, **_ERRORS}},
        }
    for name in r.actions:
        paths[f"{item}/{name}"] = {
            "parameters": [_ID],
            "put": {
                "tags": [tag],
                "operationId": f"{name}_{r.singular}",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": _json({}, name), **_ERRORS},
            },
        }
    for name in r.read_actions:
        paths[f"{item}/{name}"] = {
            "parameters": [_ID],
            "get": {
                "tags": [tag],
                "operationId": f"{name}_{r.singular}",
                "responses": {"200": _json({}, name), **_ERRORS},
            },
        }
    if r.parent is not None:  # a sub-resource: its parent's id is in every path
        parent = {"name": r.parent, "in": "path", "required": True, "schema": {"type": "string"}}
        for item_ in paths.values():
            item_["parameters"] = [parent, *item_.get("parameters", [])]
    return paths


def document(resources: list[Resource], *, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "operationId": "versions",
                "security": [],
                "responses": {"200": _json({"type": "object", "required": ["versions"]}, "API versions")},
            }
        },
        "/v2.0/extensions": {
            "get": {
                "operationId": "list_extensions",
                "responses": {
                    "200": _json(_wrapped("extensions", {"type": "array"}), "implemented extensions"),
                    **_ERRORS,
                },
            }
        },
        "/v2.0/extensions/{alias}": {
            "get": {
                "operationId": "show_extension",
                "parameters": [{"name": "alias", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_wrapped("extension", {"type": "object"}), "one extension"), **_ERRORS},
            }
        },
    }
    for r in resources:
        paths.update(_paths(r))
    paths.update(quotas.openapi_paths(_ERRORS))
    paths.update(ipviews.openapi_paths(_ERRORS))
    paths.update(reachability.openapi_paths(_ERRORS))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "scopenet Networking API (Neutron v2.0 compatible)",
            "version": version,
            "description": "Address scopes, subnet pools, networks, subnets, ports, routers and floating IPs "
            "with Neutron's wire format. Authenticate with X-Auth-Token.",
        },
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
            "schemas": {"NeutronError": _ERROR},
        },
        "security": [{"token": []}],
        "paths": paths,
    }
