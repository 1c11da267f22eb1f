"""Apply a Plan's actions to the kernel, in order; the only module that changes kernel state.

Every action is idempotent at this level too ("add" that finds the thing there, "delete" that
finds it gone, both succeed), because a plan can race with the kernel: a namespace deleted by hand
takes its veths with it asynchronously, and an agent killed mid-apply leaves a half-done plan that
the next one repeats. Bridge changes are serialised (one lock) because routers share bridges: one
router must not delete a bridge another is plugging into. Bridges and their VXLAN devices are made
and removed by ``scopenet.netlink.vxlan`` (the instance plug tool makes them the same way).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import TYPE_CHECKING, Any

from pyroute2.netlink.exceptions import NetlinkError

from scopenet.datapath import announce, names
from scopenet.datapath.model import (
    Action,
    AddAddress,
    Announce,
    CreateNamespace,
    CreateVeth,
    DeleteAddress,
    DeleteBridge,
    DeleteLink,
    DeleteLinks,
    DeleteNamespace,
    DeleteRoute,
    EnsureBridge,
    EnsureVxlan,
    Plan,
    ReplaceNftTable,
    ReplaceRoute,
    SetLink,
    SetSysctl,
    describe,
)
from scopenet.netlink import libnft, rtnl, vxlan
from scopenet.netlink.errors import KernelError
from scopenet.netlink.rtnl import (
    IFA_F_NODAD,
    MISSING,
    delete_group,
    link_by_name,
    tolerate,
    wait_forwarding,
    write_sysctls,
)

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

    from scopenet.netlink.kernel import Kernel


RT_TABLE_MAIN = 254
RTPROT_STATIC = 4


class _Indexes:
    """Interface indexes looked up during one plan (a lookup is a netlink round trip)."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, str], int] = {}

    async def __call__(self, ipr: AsyncIPRoute, name: str) -> int:
        key = (id(ipr), name)
        if key not in self._known:
            self._known[key] = await rtnl.index_of(ipr, name)
        return self._known[key]

    def learn(self, ipr: AsyncIPRoute, name: str, index: int) -> None:
        self._known[(id(ipr), name)] = index

    def forget(self, ipr: AsyncIPRoute, name: str) -> None:
        self._known.pop((id(ipr), name), None)

    def clear(self) -> None:
        self._known.clear()


async def apply_plan(kernel: Kernel, plan: Plan) -> dict[str, Any] | None:
    """Run the plan's actions; the table's listing read right after writing it (None: not written)."""
    written: dict[str, Any] | None = None
    indexes = _Indexes()
    plugged: list[str] = []
    announces: list[Announce] = []
    for action in plan.actions:
        if isinstance(action, Announce):
            announces.append(action)  # once the ports forward (below)
            continue
        try:
            listing = await _apply(kernel, action, indexes)
        except NetlinkError as exc:
            raise KernelError(f"{describe(action)}: {exc.args[-1] if exc.args else exc}") from exc
        except OSError as exc:
            raise KernelError(f"{describe(action)}: {exc.strerror or exc}") from exc
        if listing is not None:
            written = listing
        if isinstance(action, CreateVeth):
            plugged.append(action.veth.peer)
        elif isinstance(action, SetLink) and action.namespace is None and action.master:
            if not action.name.startswith(names.VXLAN_PREFIX):  # no carrier to wait for (operstate UNKNOWN)
                plugged.append(action.name)
    if plugged:
        late = await wait_forwarding(kernel.host_route(), plugged)
        if late:
            raise KernelError(f"bridge ports not forwarding after 2 s: {', '.join(late)}")
    for a in announces:
        try:
            await kernel.ns.call(a.namespace, lambda a=a: _announce(a))  # type: ignore[misc]
        except OSError as exc:
            raise KernelError(f"{describe(a)}: {exc.strerror or exc}") from exc
    return written


def _announce(a: Announce) -> None:
    """Send the port's announcements (inside its namespace, through a packet socket on it)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((a.ifname, 0))
        for frame in announce.frames(a.mac, a.addresses):
            s.send(frame)


async def _ipr(kernel: Kernel, namespace: str | None) -> AsyncIPRoute:
    if namespace is None:
        return kernel.host_route()
    return (await kernel.handle(namespace, verify=False)).ipr


def _write_table(text: str) -> dict[str, Any] | None:
    """Replace the table and read it back with the same context (inside the namespace)."""

    def write(ctx: libnft.Nft) -> dict[str, Any] | None:
        ctx.run(text)
        return libnft.table_listing(ctx)

    return libnft.session(write)


async def _apply(kernel: Kernel, action: Action, index_of: _Indexes) -> dict[str, Any] | None:
    """Apply one action; for actions that write the nft table, its listing read right after."""
    ns = kernel.ns
    match action:
        case CreateNamespace(namespace=new, sysctls=sysctls, nft=text):

            def prepare() -> tuple[dict[str, Any] | None, socket.socket]:
                write_sysctls(sysctls)
                return _write_table(text), ns.route_socket()

            index_of.clear()
            made = await ns.run(lambda: ns.create(new, prepare))
            assert made is not None
            table, sock = made
            handle = await kernel.adopt(new, sock)
            await handle.ipr.link("set", index=1, state="up")  # lo is always index 1 in a new namespace
            return table
        case DeleteNamespace(namespace=old):
            index_of.clear()
            kernel.drop(old)
            await ns.run(lambda: ns.delete(old))
        case EnsureBridge(name=name, vxlan=vx):
            async with kernel.bridge_lock:
                host = kernel.host_route()
                index_of.forget(host, name)
                await vxlan.ensure_bridge(host, name, vx)
        case EnsureVxlan(vxlan=vx):
            async with kernel.bridge_lock:
                host = kernel.host_route()
                index_of.forget(host, vx.name)
                await vxlan.ensure_vxlan(host, vx)
        case DeleteBridge(name=name):
            async with kernel.bridge_lock:
                host = kernel.host_route()
                index_of.forget(host, name)
                await vxlan.delete_bridge_if_empty(host, name)
        case CreateVeth(namespace=name, veth=v, vxlan=vx):
            # Three round trips (a router is mostly veths, and an agent taking over a dead one's
            # routers makes hundreds): both ends made and this one up in one request, which echoes
            # its index for the addresses; the bridge looked up; the host end plugged and up by name.
            ipr = (await kernel.handle(name, verify=False)).ipr
            index = await rtnl.add_veth(
                ipr,
                name=v.name,
                mac=v.mac,
                mtu=v.mtu,
                group=names.LINK_GROUP,
                peer=v.peer,
                peer_netns_fd=kernel.host_fd,
            )
            index_of.learn(ipr, v.name, index)
            async with kernel.bridge_lock:  # the bridge may have gone with another router's last port
                host = kernel.host_route()
                bridge = await link_by_name(host, v.bridge)
                index_of.forget(host, v.bridge)
                master = int(bridge["index"]) if bridge is not None else await vxlan.ensure_bridge(host, v.bridge, vx)
                await rtnl.plug(host, v.peer, master)
        case DeleteLink(namespace=name, name=ifname):
            ipr = await _ipr(kernel, name)
            index_of.forget(ipr, ifname)
            msg = await link_by_name(ipr, ifname)
            if msg is not None:
                await tolerate(ipr.link("del", index=msg["index"]), *MISSING)
        case DeleteLinks(namespace=name, names=ifnames):
            ipr = await _ipr(kernel, name)
            index_of.clear()
            await tolerate(delete_group(ipr, names.LINK_GROUP), *MISSING)
            for ifname in ifnames:  # anything not in the group (made by hand, older agents)
                msg = await link_by_name(ipr, ifname)
                if msg is not None:
                    await tolerate(ipr.link("del", index=msg["index"]), *MISSING)
        case SetLink(namespace=name, name=ifname, mac=mac, mtu=mtu, master=master, up=up):
            ipr = await _ipr(kernel, name)
            attrs: dict[str, Any] = {"state": "up" if up else "down"}
            if mac:
                attrs["address"] = mac
            if mtu:
                attrs["mtu"] = mtu
            if master:
                attrs["master"] = await index_of(kernel.host_route(), master)
            await ipr.link("set", index=await index_of(ipr, ifname), **attrs)
        case AddAddress(namespace=name, address=a) | DeleteAddress(namespace=name, address=a):
            ipr = (await kernel.handle(name, verify=False)).ipr
            iface = ipaddress.ip_interface(a.cidr)
            args: dict[str, Any] = {
                "index": await index_of(ipr, a.ifname),
                "address": str(iface.ip),
                "prefixlen": iface.network.prefixlen,
            }
            if isinstance(action, AddAddress):
                if iface.version == 6:
                    args["flags"] = IFA_F_NODAD
                await tolerate(ipr.addr("add", **args), errno.EEXIST)
            else:
                await tolerate(ipr.addr("del", **args), *MISSING)
        case ReplaceRoute(namespace=name, route=r) | DeleteRoute(namespace=name, route=r):
            ipr = (await kernel.handle(name, verify=False)).ipr
            spec = {"dst": r.dst, "gateway": r.via, "table": RT_TABLE_MAIN, "proto": RTPROT_STATIC}
            if isinstance(action, ReplaceRoute):
                await ipr.route("replace", **spec)
            else:
                await tolerate(ipr.route("del", **spec), *MISSING)
        case SetSysctl(namespace=name, key=key, value=value):
            await ns.call(name, lambda: write_sysctls([(key, value)]))
        case ReplaceNftTable(namespace=name, text=text):
            return await ns.call(name, lambda: _write_table(text))
        case _:
            raise AssertionError(action)
    return None
