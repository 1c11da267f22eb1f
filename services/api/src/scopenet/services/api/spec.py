"""What the generic controller needs to know about one Neutron resource.

A ``Resource`` is declarative (URL, JSON keys, attribute map, extension flags); its ``Backend``
turns the five verbs into NATS commands. Backends return *internal* views: plain JSON dicts with
native types (ints stay ints), so filtering and sorting compare real values; ``render`` makes the
wire shape (e.g. subnet pool prefix lengths as strings, docs/neutron.md#subnet-pools).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import NotFound
from scopenet.services.api.attrs import Attr

View = dict[str, Any]
PARENT: ContextVar[str] = ContextVar("parent")
"""The parent's id of a sub-resource request (``/floatingips/{floatingip_id}/port_forwardings``),
set by the controller for the request's task; its backend reads it."""
Action = Callable[[CallContext, str, Any], Awaitable[tuple[int, Any]]]
"""A member action (``PUT /<collection>/<id>/<action>``): context, id, parsed body → (status, body)."""


class Backend(Protocol):
    async def create(self, ctx: CallContext, body: View) -> View: ...

    async def get(self, ctx: CallContext, id_: str) -> View: ...

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        """Every visible item; ``filters`` may be used to narrow the search (the controller
        filters again, so a backend may ignore them)."""
        ...

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View: ...

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None: ...


@dataclass(frozen=True)
class Resource:
    collection: str
    """URL segment under /v2.0 (``address-scopes``)."""
    plural: str
    """JSON key of lists (``address_scopes``)."""
    singular: str
    """JSON key of one item (``address_scope``)."""
    attrs: tuple[Attr, ...]
    backend: Backend
    not_found_type: str
    not_found_text: str
    """Message with one ``{}`` for the id."""
    tags: bool = False
    revisions: bool = True
    """Supports ``If-Match: revision_number=N`` (standard-attribute resources)."""
    bulk: bool = True
    writable: bool = True
    marker_must_exist: bool = True
    actions: dict[str, Action] = field(default_factory=dict)
    read_actions: dict[str, Action] = field(default_factory=dict)
    """Member actions on ``GET /<collection>/<id>/<action>`` (body ``None``; e.g. ``get_advertised_routes``)."""
    render: Callable[[View, str], View] | None = None
    """Wire shape of an internal view; the second argument is the verb (``show``/``list``/``create``/``update``)."""
    hidden: frozenset[str] = frozenset()
    """Keys of internal views never shown to clients."""
    admin_view: frozenset[str] = frozenset()
    """Keys only admins see (Neutron's ``get_network:provider:*`` policies)."""
    extra_filters: dict[str, Callable[[View, list[str]], bool]] = field(default_factory=dict)
    """Filters that are not plain attribute equality (e.g. ports' ``fixed_ips``)."""
    doc: str = ""
    parent: str | None = None
    """A sub-resource: the path parameter in ``collection`` naming its parent (``floatingip_id``)."""
    parent_not_found: tuple[str, str] | None = None
    """(type, message with one ``{}``) for a parent id that is not a UUID."""

    def attr(self, name: str) -> Attr | None:
        for a in self.attrs:
            if a.name == name:
                return a
        return None

    def not_found(self, id_: str) -> NotFound:
        return NotFound(self.not_found_text.format(id_), type=self.not_found_type)

    def present(self, view: View, verb: str, ctx: CallContext | None = None) -> View:
        hide = self.hidden if ctx is None or ctx.is_admin else self.hidden | self.admin_view
        out = {k: v for k, v in view.items() if k not in hide} if hide else view
        return self.render(out, verb) if self.render else out
