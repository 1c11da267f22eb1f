"""The datapath port on Linux: observe a router's kernel state and apply plans to it.

Links, addresses and routes go through pyroute2's ``AsyncIPRoute`` on the event loop, one socket
per router namespace plus one in the host namespace. The sockets are opened on the namespace thread
(``scopenet.netlink.namespaces``) and handed to ``AsyncIPRoute(use_socket=...)``: pyroute2's own
``netns=`` argument forks a helper process per socket, which is exactly the per-operation process
cost this agent avoids. nftables work runs on the namespace thread with a short-lived libnftables
context made inside the router's namespace (see ``libnft``).

Handles are cached per namespace and checked against the namespace's inode on every observation,
so a namespace deleted and recreated by hand is never written through a stale socket.

The *host* namespace holds the bridges (one per network), their VXLAN devices when the host has an
underlay, and the host ends of the veths. It is a named namespace (``host="…"``; created if
missing) or, with ``host=None``, the agent's own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute

from scopenet.datapath import names, nft
from scopenet.datapath.model import (
    Address,
    BridgeObs,
    LinkObs,
    ObservedRouter,
    PeerObs,
    Plan,
    Route,
    RouterState,
)
from scopenet.netlink import libnft, vxlan
from scopenet.netlink.apply import apply_plan
from scopenet.netlink.errors import KernelError
from scopenet.netlink.namespaces import Namespaces
from scopenet.netlink.rtnl import (
    link_by_index,
    link_by_name,
    open_ipr,
    read_sysctls,
    static_routes,
    write_sysctls,
)

RT_TABLE_MAIN = 254
RTPROT_STATIC = 4


@dataclass
class RouterHandle:
    """What the agent keeps open for one router namespace."""

    identity: tuple[int, int]
    ipr: AsyncIPRoute


@dataclass(frozen=True)
class _Probe:
    identity: tuple[int, int]
    fresh: Any
    """A netlink socket opened inside the namespace when the cached handle was missing or stale."""
    sysctls: dict[str, str]
    listing: dict[str, Any] | None


class Kernel:
    """``DatapathPort`` for Linux (see the module docstring)."""

    def __init__(self, namespaces: Namespaces, *, host: str | None = None, bridge_nf_off: bool | None = None) -> None:
        """``bridge_nf_off``: set ``bridge-nf-call-ip(6)tables=0`` in the host namespace, so bridged
        frames skip its netfilter. Default: yes in a namespace of ours (``host="…"``), no on the real
        host (``host=None``), where it is a machine-wide setting other software (Docker) relies on."""
        self.ns = namespaces
        self.host = host
        self.bridge_nf_off = host is not None if bridge_nf_off is None else bridge_nf_off
        self.host_fd = -1
        self.host_ipr: AsyncIPRoute | None = None
        self.handles: dict[str, RouterHandle] = {}
        self.bridge_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        libnft.backend()  # one clear line when nftables is missing, before anything is touched
        if self.host is not None:
            name = self.host
            await self.ns.run(lambda: self.ns.identity(name) or self.ns.create(name))
        self.host_fd = await self.ns.run(lambda: self.ns.open_fd(self.host))
        sock = await self.ns.call(self.host, self.ns.route_socket)
        self.host_ipr = await open_ipr(sock)
        # br_netfilter defaults to on in a new namespace: bridged frames would traverse its netfilter.
        if self.bridge_nf_off:
            keys = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")
            await self.ns.call(self.host, lambda: write_sysctls(((k, "0") for k in keys), missing_ok=True))

    async def close(self) -> None:
        for name in list(self.handles):
            self.drop(name)
        if self.host_ipr is not None:
            self.host_ipr.close()
            self.host_ipr = None
        if self.host_fd >= 0:
            os.close(self.host_fd)
            self.host_fd = -1

    async def __aenter__(self) -> Kernel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- handles --------------------------------------------------------------------------------

    def drop(self, namespace: str) -> None:
        """Forget a namespace's handle (closing its socket lets a deleted namespace go)."""
        handle = self.handles.pop(namespace, None)
        if handle is not None:
            handle.ipr.close()

    async def _probe(self, namespace: str, sysctl_keys: Iterable[str], *, list_table: bool = True) -> _Probe | None:
        """One trip to the namespace thread: does the namespace (still) exist as the one we hold a
        handle for (else open a new handle inside it), its sysctls, and its nft table."""
        cached = self.handles.get(namespace)
        keys = tuple(sysctl_keys)

        def probe() -> _Probe | None:
            ident = self.ns.identity(namespace)
            if ident is None:
                return None

            def inside() -> _Probe:
                fresh = self.ns.route_socket() if cached is None or cached.identity != ident else None
                table = libnft.session(libnft.table_listing) if list_table else None
                return _Probe(ident, fresh, read_sysctls(keys), table)

            return self.ns.inside(namespace, inside)

        result = await self.ns.run(probe)
        if result is None:
            self.drop(namespace)
            return None
        if result.fresh is not None:
            self.drop(namespace)
            self.handles[namespace] = RouterHandle(result.identity, await open_ipr(result.fresh))
        return result

    async def handle(self, namespace: str, *, verify: bool = True) -> RouterHandle:
        """The open handle of an existing namespace (opened when needed). ``verify=False`` trusts a
        cached handle without a trip to the namespace thread: apply uses it right after observe,
        which has just verified it."""
        cached = self.handles.get(namespace)
        if cached is not None and not verify:
            return cached
        if await self._probe(namespace, (), list_table=False) is None:
            raise KernelError(f"network namespace {namespace} does not exist")
        return self.handles[namespace]

    async def adopt(self, namespace: str, sock: Any) -> RouterHandle:
        """Register the handle of a namespace just created, with a socket made inside it."""
        ident = await self.ns.run(lambda: self.ns.identity(namespace))
        if ident is None:
            raise KernelError(f"network namespace {namespace} vanished")
        self.drop(namespace)
        handle = RouterHandle(ident, await open_ipr(sock))
        self.handles[namespace] = handle
        return handle

    # -- observe --------------------------------------------------------------------------------

    async def observe(self, router_id: str, desired: RouterState | None) -> ObservedRouter:
        namespace = names.namespace(router_id)
        host = self.host_route()
        probe = await self._probe(namespace, [k for k, _ in desired.sysctls] if desired else [])
        # Host side by name: the bridges and peers the desired state uses (one RTM_GETLINK each).
        bridges: dict[str, BridgeObs] = {}
        masters: dict[int, str] = {}
        for name in desired.bridges if desired else ():
            msg = await link_by_name(host, name)
            if msg is not None:
                bridges[name] = BridgeObs(up=bool(msg["flags"] & 1))
                masters[msg["index"]] = name
        peer_msgs = {}
        for name in sorted({v.peer for v in desired.veths} if desired else ()):
            msg = await link_by_name(host, name)
            if msg is not None:
                peer_msgs[msg["index"]] = msg
        host_peers = {m.get("ifname"): await self._peer(m, masters) for m in peer_msgs.values()}
        vxlans = {}
        for vx in desired.vxlans if desired else ():
            msg = await link_by_name(host, vx.name)
            if msg is not None:
                vxlans[vx.name] = vxlan.observe(msg, await self._master(msg, masters))
        if probe is None:
            return ObservedRouter(router_id, namespace, False, host_peers=host_peers, bridges=bridges, vxlans=vxlans)

        ipr = self.handles[namespace].ipr
        links: dict[str, LinkObs] = {}
        by_index: dict[int, str] = {}
        async for msg in await ipr.link("dump"):
            name = msg.get("ifname")
            by_index[msg["index"]] = name
            peer = None
            kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ("loopback" if name == "lo" else "")
            if kind == "veth" and msg.get("link"):
                peer_msg = peer_msgs.get(msg.get("link")) or await link_by_index(host, msg.get("link"))
                if peer_msg is not None and peer_msg.get("link") == msg["index"]:
                    peer = await self._peer(peer_msg, masters)
            links[name] = LinkObs(
                name=name,
                kind=kind,
                mac=(msg.get("address") or "").lower(),
                mtu=msg.get("mtu") or 0,
                up=bool(msg["flags"] & 1),
                peer=peer,
            )
        addresses = set()
        async for msg in await ipr.addr("dump"):
            if msg["scope"] == 0 and msg["index"] in by_index:
                cidr = f"{msg.get('address')}/{msg['prefixlen']}"
                addresses.add(Address(by_index[msg["index"]], _norm_iface(cidr)))
        routes = {Route(_norm_net(dst), via) for dst, via in await static_routes(ipr, RT_TABLE_MAIN, RTPROT_STATIC)}
        table = probe.listing
        return ObservedRouter(
            router_id=router_id,
            namespace=namespace,
            namespace_exists=True,
            links=links,
            addresses=frozenset(addresses),
            routes=frozenset(routes),
            sysctls=probe.sysctls,
            nft=nft.parse_listing(table) if table is not None else None,
            host_peers=host_peers,
            bridges=bridges,
            vxlans=vxlans,
        )

    async def _peer(self, msg: Any, masters: dict[int, str]) -> PeerObs:
        master = await self._master(msg, masters)
        return PeerObs(name=msg.get("ifname"), master=master, mtu=msg.get("mtu") or 0, up=bool(msg["flags"] & 1))

    async def _master(self, msg: Any, masters: dict[int, str]) -> str | None:
        """The name of the bridge a host link is plugged into (``masters``: names known by index)."""
        index = msg.get("master")
        if not index:
            return None
        if index not in masters:
            m = await link_by_index(self.host_route(), index)
            masters[index] = m.get("ifname") if m is not None else ""
        return masters[index] or None

    async def _bridges(self, wanted: Iterable[str]) -> dict[str, BridgeObs]:
        host = self.host_route()
        out: dict[str, BridgeObs] = {}
        for name in wanted:
            msg = await link_by_name(host, name)
            if msg is not None:
                out[name] = BridgeObs(up=bool(msg["flags"] & 1))
        return out

    def host_route(self) -> AsyncIPRoute:
        """The rtnetlink handle of the host namespace."""
        if self.host_ipr is None:
            raise KernelError("kernel adapter not started")
        return self.host_ipr

    # -- apply and read-back ----------------------------------------------------------------------

    async def apply(self, plan: Plan) -> str | None:
        """Apply the plan; the fingerprint of the nft table if the plan wrote it (else None)."""
        written = await apply_plan(self, plan)
        obs = nft.parse_listing(written) if written is not None else None
        return obs.fingerprint if obs is not None else None

    async def listing(self, router_id: str) -> dict[str, Any] | None:
        """``nft -j list table inet scopenet_router`` in the router's namespace (None: no table)."""
        probe = await self._probe(names.namespace(router_id), ())
        if probe is None:
            raise KernelError(f"router {router_id} has no namespace")
        return probe.listing

    async def counters(self, router_id: str) -> dict[str, int]:
        """Packets per named counter of the router's table (``drop_<ifname>``: scope-filter drops)."""
        listing = await self.listing(router_id)
        return nft.counters(listing) if listing is not None else {}

    async def routers(self) -> list[str]:
        """Router ids of every ``qrouter-`` namespace under the run directory (anyone's)."""
        found = await self.ns.run(lambda: self.ns.names(names.NAMESPACE_PREFIX))
        return sorted(str(rid) for n in found if (rid := names.router_id_of(n)) is not None)

    async def owner(self, router_id: str) -> str | None:
        """The agent named in the router's nft table; None when there is none (not ours to touch)."""
        namespace = names.namespace(router_id)
        known = namespace in self.handles
        try:
            listing = await self.listing(router_id)
        except KernelError:
            return None
        finally:
            if not known:
                self.drop(namespace)  # hold no reference to a namespace that may be someone else's
        obs = nft.parse_listing(listing) if listing is not None else None
        return obs.owner if obs is not None else None


def _norm_iface(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr))


def _norm_net(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False))
