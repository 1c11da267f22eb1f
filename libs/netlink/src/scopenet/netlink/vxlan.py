"""Network bridges and their VXLAN devices in the host namespace: the one place that makes them.

A network is a bridge per host (``brq-<segmentation id>``); with an underlay (``Underlay``, from
``SCOPENET_VXLAN_LOCAL_IP``) the bridge also has a VXLAN device, ``vxlan-<vni>``, which carries the
network's frames to the other hosts: VNI = the segmentation id, sent from the local address over
the link holding it, unknown destinations and broadcasts flooded to a multicast group (every host's
device of every network joins it; the VNI keeps the networks apart), MAC addresses learnt from what
arrives (``learning on``), UDP port 4789. Multicast, not head-end replication: the underlay carries
IGMP, and no host needs to know the others (no peer list to keep up to date when a host comes or
goes). The underlay must carry 50 bytes more than the networks' MTU (VXLAN over IPv4).

Both the agent (``apply``) and the instance plug tool (``instance``) may be the first to need a
network on a host, so both make its bridge here, and a bridge whose only ports are VXLAN devices
counts as empty: the last one to leave the network on this host removes the bridge and its device.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any

from scopenet.datapath import names
from scopenet.datapath.model import Underlay, Vxlan, VxlanObs
from scopenet.netlink.errors import KernelError
from scopenet.netlink.rtnl import MISSING, bridge_ports, index_of, link_by_name, tolerate

if TYPE_CHECKING:
    from ipaddress import IPv4Address

    from pyroute2 import AsyncIPRoute


def underlay(local_ip: IPv4Address | None, *, group: IPv4Address, port: int) -> Underlay | None:
    """The host's underlay (the agent's ``vxlan_*`` settings); None when ``local_ip`` is unset (one host)."""
    if local_ip is None:
        return None
    return Underlay(local_ip=str(local_ip), group=str(group), port=port)


async def ensure_bridge(ipr: AsyncIPRoute, name: str, vxlan: Vxlan | None = None) -> int:
    """The bridge, made if missing, up, with its VXLAN device (when given); its index."""
    msg = await link_by_name(ipr, name)
    if msg is None:
        await tolerate(ipr.link("add", ifname=name, kind="bridge"), errno.EEXIST)
        msg = await link_by_name(ipr, name)
        if msg is None:
            raise KernelError(f"bridge {name} vanished as it was made")
    index = int(msg["index"])
    if not msg["flags"] & 1:
        await ipr.link("set", index=index, state="up")
    if vxlan is not None:
        await ensure_vxlan(ipr, vxlan, bridge_index=index)
    return index


async def ensure_vxlan(ipr: AsyncIPRoute, vxlan: Vxlan, *, bridge_index: int | None = None) -> None:
    """The VXLAN device as ``vxlan`` asks, plugged into its bridge and up (a link of that name made
    otherwise is replaced)."""
    bridge = bridge_index if bridge_index is not None else await index_of(ipr, vxlan.bridge)
    msg = await link_by_name(ipr, vxlan.name)
    if msg is not None and not observe(msg, None).matches(vxlan):
        await tolerate(ipr.link("del", index=msg["index"]), *MISSING)
        msg = None
    if msg is not None:
        if msg.get("master") != bridge or not msg["flags"] & 1:
            await ipr.link("set", index=msg["index"], master=bridge, state="up")
        return
    await ipr.link(
        "add",
        ifname=vxlan.name,
        kind="vxlan",
        vxlan_id=vxlan.vni,
        vxlan_local=vxlan.local_ip,
        vxlan_group=vxlan.group,
        vxlan_link=await underlay_link(ipr, vxlan.local_ip),
        vxlan_port=vxlan.port,
        vxlan_learning=1,
        master=bridge,
        state="up",
    )


async def delete_bridge_if_empty(ipr: AsyncIPRoute, name: str) -> bool:
    """Remove the bridge, and its VXLAN device, when nothing else is plugged into it. True: removed."""
    msg = await link_by_name(ipr, name)
    if msg is None:
        return False
    ports = await bridge_ports(ipr, msg["index"])
    if any(not p.startswith(names.VXLAN_PREFIX) for p in ports):
        return False
    for port in ports:  # first, so no frame arriving from the underlay finds a half-removed network
        if (found := await link_by_name(ipr, port)) is not None:
            await tolerate(ipr.link("del", index=found["index"]), *MISSING)
    await tolerate(ipr.link("del", index=msg["index"]), *MISSING)
    return True


def observe(msg: Any, master: str | None) -> VxlanObs:
    """A link message read as a VXLAN device (``kind`` tells whether it is one)."""
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ""
    data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA") if kind == "vxlan" else None
    attr = (lambda key: data.get(key)) if data is not None else (lambda key: None)
    return VxlanObs(
        kind=kind,
        vni=attr("IFLA_VXLAN_ID"),
        local_ip=attr("IFLA_VXLAN_LOCAL"),
        group=attr("IFLA_VXLAN_GROUP"),
        port=attr("IFLA_VXLAN_PORT"),
        learning=bool(attr("IFLA_VXLAN_LEARNING")),
        master=master,
        up=bool(msg["flags"] & 1),
    )


async def underlay_link(ipr: AsyncIPRoute, local_ip: str) -> int:
    """The index of the link holding ``local_ip`` (the VXLAN device's ``dev``)."""
    async for addr in await ipr.addr("dump", family=socket.AF_INET):
        if addr.get("address") == local_ip:
            return int(addr["index"])
    raise KernelError(
        f"no link in the host namespace holds the VXLAN local address {local_ip} (SCOPENET_VXLAN_LOCAL_IP)"
    )
