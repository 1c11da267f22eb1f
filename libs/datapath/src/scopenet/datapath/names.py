"""Names and marks of the kernel objects of one router: the only place that spells them.

Linux limits interface names to 15 characters, so ports are named like Neutron's: a three-letter
prefix and the first 11 characters of the port id (``qr-1234abcd-56``). Namespace names are
``qrouter-<router id>``, as Neutron's, so an operator's muscle memory (``ip netns exec qrouter-…``)
keeps working. Bridges are named after the network's segmentation id, which every agent on every
host sees the same, and so are their VXLAN devices (``vxlan-<vni>``, VNI = segmentation id: at most
24 bits, so at most 14 characters).
"""

from __future__ import annotations

from uuid import UUID

from scopenet.contracts.routerspec import NOSCOPE_MARK_ID, Scope

NAMESPACE_PREFIX = "qrouter-"
INTERNAL_PREFIX = "qr-"
GATEWAY_PREFIX = "qg-"
PEER_PREFIX = "tap"
BRIDGE_PREFIX = "brq-"
VXLAN_PREFIX = "vxlan-"
TABLE = "scopenet_router"
"""The nftables table (family ``inet``) that holds all of one router's rules, in its namespace."""

SCOPE_MASK = 0xFFFF0000
LOW_MASK = 0x0000FFFF
EXTERNAL_INGRESS_MARK = 0x2
"""Low 16 bits of the mark of packets that came in through the gateway (Neutron's ``0x2/0xffff``)."""

IFNAMSIZ = 15
LINK_GROUP = 0x73636E
"""Link group of a router's own interfaces inside its namespace (so they can be removed at once)."""


def namespace(router_id: UUID | str) -> str:
    return f"{NAMESPACE_PREFIX}{router_id}"


def router_id_of(namespace_name: str) -> UUID | None:
    """The router id of a ``qrouter-`` namespace name, None for any other name."""
    if not namespace_name.startswith(NAMESPACE_PREFIX):
        return None
    try:
        return UUID(namespace_name[len(NAMESPACE_PREFIX) :])
    except ValueError:
        return None


def _short(port_id: UUID | str) -> str:
    return str(port_id)[:11]


def internal_ifname(port_id: UUID | str) -> str:
    return INTERNAL_PREFIX + _short(port_id)


def gateway_ifname(port_id: UUID | str) -> str:
    return GATEWAY_PREFIX + _short(port_id)


def peer_ifname(port_id: UUID | str) -> str:
    """The host-side end of a port's veth pair (the one plugged into the network's bridge)."""
    return PEER_PREFIX + _short(port_id)


def bridge(segmentation_id: int) -> str:
    return f"{BRIDGE_PREFIX}{segmentation_id}"


def vxlan(segmentation_id: int) -> str:
    return f"{VXLAN_PREFIX}{segmentation_id}"


def scope_mark(scope: Scope | None) -> int:
    """Neutron's layout: the scope's mark id in the upper 16 bits; None is "no scope" (1024)."""
    mark_id: int = NOSCOPE_MARK_ID if scope is None else scope.mark_id
    return mark_id << 16
