"""``/v2.0/floatingips/{floatingip_id}/port_forwardings``: Neutron's port forwardings, a
sub-resource of floating IPs (docs/neutron.md#port-forwarding).

The generic controller serves it like any collection; the floating IP's id comes from the path
(``spec.PARENT``, set by the controller for each request of a sub-resource) and goes to topology
with every command, which answers 404 for a floating IP the caller cannot see.
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import CallContext
from scopenet.services.api.attrs import Attr, as_int, as_string, as_uuid, invalid, project_attrs, ro, with_schema
from scopenet.services.api.gateway import Gateway
from scopenet.services.api.ipam import dump
from scopenet.services.api.spec import PARENT, Resource, View

PUSHDOWN = frozenset({"id", "internal_port_id", "protocol", "external_port", "description"})


def _port_range(name: str, value: Any) -> Any:
    """Neutron's ``type:port_range``: ``"80:90"``, ``"80"`` or 80 (topology checks the numbers)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and len(value) <= 16:
        return value
    raise invalid(name, f"'{str(value)[:64]}' is not a valid port range")


port_range = with_schema(_port_range, {"type": ["string", "integer", "null"], "maxLength": 16})


class PortForwardings:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def create(self, ctx: CallContext, body: View) -> View:
        reply = await self.gw.call_json(
            ep.PORT_FORWARDING_CREATE, ctx, floatingip_id=PARENT.get(), port_forwarding=body
        )
        return dump(reply["port_forwarding"])

    async def get(self, ctx: CallContext, id_: str) -> View:
        reply = await self.gw.call_json(ep.PORT_FORWARDING_GET, ctx, floatingip_id=PARENT.get(), id=id_)
        return dump(reply["port_forwarding"])

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        pushed = {k: [str(x) for x in v] for k, v in filters.items() if k in PUSHDOWN}
        reply = await self.gw.call_json(ep.PORT_FORWARDING_LIST, ctx, floatingip_id=PARENT.get(), filters=pushed)
        return [dump(item) for item in reply["port_forwardings"]]

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        reply = await self.gw.call_json(
            ep.PORT_FORWARDING_UPDATE, ctx, floatingip_id=PARENT.get(), id=id_, port_forwarding=body
        )
        return dump(reply["port_forwarding"])

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        await self.gw.call(ep.PORT_FORWARDING_DELETE, ctx, floatingip_id=PARENT.get(), id=id_)


def resource(gw: Gateway) -> Resource:
    port = as_int(minimum=1, maximum=65535, nullable=True)
    return Resource(
        collection="floatingips/{floatingip_id}/port_forwardings",
        plural="port_forwardings",
        singular="port_forwarding",
        attrs=(
            ro("id"),
            Attr("protocol", as_string(40), required=True, put=True),
            Attr("external_port", port, put=True),
            Attr("internal_port", port, put=True, filter=False),
            Attr("external_port_range", port_range, put=True),
            Attr("internal_port_range", port_range, put=True, filter=False),
            Attr("internal_ip_address", as_string(64), required=True, put=True, filter=False),
            Attr("internal_port_id", as_uuid(), required=True, put=True),
            Attr("description", as_string(255), put=True, sort=False),
            *project_attrs(),
        ),
        backend=PortForwardings(gw),
        not_found_type="PortForwardingNotFound",
        not_found_text="Port Forwarding {} could not be found.",
        revisions=False,
        bulk=False,
        parent="floatingip_id",
        parent_not_found=("FloatingIPNotFound", "Floating IP {} could not be found"),
        # Neutron shows neither (project_id is not visible; the floating IP is in the URL).
        hidden=frozenset({"project_id", "floatingip_id"}),
        doc="Port forwardings of a floating IP: a protocol and external port (or range) DNATed to an "
        "internal address and port.",
    )
