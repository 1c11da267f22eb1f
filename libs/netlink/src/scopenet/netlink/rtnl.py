"""Small rtnetlink and sysctl helpers shared by the kernel adapter and test instances.

Lookups go by name or index with ``RTM_GETLINK`` (the kernel answers one link), never by dumping
every link and filtering in Python: a host namespace with hundreds of router ports would make each
lookup cost milliseconds. Bridge ports are listed with a dump the *kernel* filters (``IFLA_MASTER``).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Iterable
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nlsocket import NetlinkRequest
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_GETLINK, RTM_GETROUTE, RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from scopenet.netlink.errors import KernelError

IFA_F_NODAD = 0x02
IFF_UP = 0x1
_CREATE_ECHO = "scopenet_create_echo"
# pyroute2 names request flags by mode; this one is "create", with the new link echoed back.
NetlinkRequest.flags[_CREATE_ECHO] = NetlinkRequest.flags["create"] | NLM_F_ECHO
MISSING = (errno.ENODEV, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENOENT)


async def open_ipr(sock: socket.socket) -> AsyncIPRoute:
    """An ``AsyncIPRoute`` on a netlink socket already opened in the right namespace."""
    ipr = AsyncIPRoute(use_socket=sock)
    await ipr.setup_endpoint()
    return ipr


async def tolerate(request: Any, *codes: int) -> None:
    """Await a netlink request, taking the listed errors as success (idempotent add and delete)."""
    try:
        await request
    except NetlinkError as exc:
        if exc.code not in codes:
            raise


async def link_by_name(ipr: AsyncIPRoute, name: str) -> Any | None:
    try:
        for msg in await ipr.link("get", ifname=name):
            return msg
    except NetlinkError as exc:
        if exc.code in MISSING:
            return None
        raise
    return None


async def link_by_index(ipr: AsyncIPRoute, index: int) -> Any | None:
    try:
        for msg in await ipr.link("get", index=index):
            return msg
    except NetlinkError as exc:
        if exc.code in MISSING:
            return None
        raise
    return None


async def index_of(ipr: AsyncIPRoute, name: str) -> int:
    msg = await link_by_name(ipr, name)
    if msg is None:
        raise KernelError(f"no link {name}")
    return int(msg["index"])


async def add_veth(
    ipr: AsyncIPRoute, *, name: str, mac: str, mtu: int, group: int, peer: str, peer_netns_fd: int
) -> int:
    """A veth pair in one request: ``name`` here, up, and ``peer`` in the namespace ``peer_netns_fd``
    (down); the index of ``name``, from the link the kernel echoes back (no lookup afterwards)."""
    made = await ipr.link(
        "add",
        ifname=name,
        kind="veth",
        address=mac,
        mtu=mtu,
        group=group,
        state="up",
        peer={"ifname": peer, "net_ns_fd": peer_netns_fd, "mtu": mtu},
        command_map={"add": (RTM_NEWLINK, _CREATE_ECHO)},
    )
    for msg in made:
        if msg["header"]["type"] == RTM_NEWLINK and msg.get("ifname") == name:
            return int(msg["index"])
    return await index_of(ipr, name)  # a kernel that does not echo


async def plug(ipr: AsyncIPRoute, name: str, master: int) -> None:
    """Put the link ``name`` into the bridge with index ``master`` and bring it up: one request, by
    name (the kernel finds the link; ENODEV when there is none)."""
    msg = ifinfmsg()
    msg["family"] = 0
    msg["index"] = 0
    msg["flags"] = IFF_UP
    msg["change"] = IFF_UP
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MASTER", master)]
    async for _ in await ipr.nlm_request(msg, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK):
        pass


async def bridge_ports(ipr: AsyncIPRoute, bridge_index: int) -> list[str]:
    msg = ifinfmsg()
    msg["family"] = 0
    msg["attrs"] = [("IFLA_MASTER", bridge_index)]
    out = []
    async for link in await ipr.nlm_request(msg, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP):
        if link.get("master") == bridge_index:  # older kernels ignore the filter: check anyway
            out.append(link.get("ifname"))
    return out


async def delete_group(ipr: AsyncIPRoute, group: int) -> None:
    """Delete every link of a link group in one request (one batched unregistration)."""
    msg = ifinfmsg()
    msg["family"] = 0
    msg["attrs"] = [("IFLA_GROUP", group)]
    async for _ in await ipr.nlm_request(msg, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK):
        pass


async def static_routes(ipr: AsyncIPRoute, table: int, proto: int) -> list[tuple[str, str]]:
    """``(dst/len, gateway)`` of the routes of one table and protocol, IPv4 and IPv6.

    The kernel filters (sockets are strict-checking, ``Namespaces.route_socket``), so a namespace's
    local and kernel routes are never sent, let alone parsed.
    """
    msg = rtmsg()
    msg["family"] = 0
    msg["table"] = table
    msg["proto"] = proto
    out = []
    async for route in await ipr.nlm_request(msg, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP):
        if route.get("table") != table or route["proto"] != proto or not route.get("gateway"):
            continue  # older kernels without strict dump filtering send everything
        dst = route.get("dst") or ("::" if route["family"] == socket.AF_INET6 else "0.0.0.0")
        out.append((f"{dst}/{route['dst_len']}", route.get("gateway")))
    return out


def read_sysctls(keys: Iterable[str]) -> dict[str, str]:
    """Values under /proc/sys of the calling thread's network namespace (missing keys left out)."""
    out = {}
    for key in keys:
        try:
            with open(f"/proc/sys/{key}") as f:
                out[key] = f.read().strip()
        except FileNotFoundError:
            continue
    return out


def write_sysctls(items: Iterable[tuple[str, str]], *, missing_ok: bool = False) -> None:
    for key, value in items:
        try:
            with open(f"/proc/sys/{key}", "w") as f:
                f.write(value)
        except FileNotFoundError:
            if not missing_ok:
                raise KernelError(f"no sysctl {key}") from None


BR_STATE_FORWARDING = 3


async def wait_forwarding(ipr: AsyncIPRoute, ports: Iterable[str], *, timeout: float = 2.0) -> list[str]:
    """Wait until each bridge port is up and forwarding; the ones that are not by ``timeout``.

    A freshly enslaved veth stays ``disabled`` until the kernel's link-watch work has seen its
    carrier (usually 5-20 ms); a frame sent before that is dropped, and an ARP request lost that way
    costs a one-second retransmit. Waiting here makes "applied" mean "forwarding".
    """
    pending = set(ports)
    deadline = time.monotonic() + timeout
    while pending:
        for name in sorted(pending):
            msg = await link_by_name(ipr, name)
            if msg is None:
                continue
            state = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_STATE")
            if msg.get("operstate") == "UP" and state == BR_STATE_FORWARDING:
                pending.discard(name)
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.002)
    return sorted(pending)
