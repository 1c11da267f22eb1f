"""A test instance: a network namespace standing in for a VM on one network.

It has one interface, ``eth0`` (a veth whose other end is plugged into the network's bridge in the
host namespace), the port's MAC and addresses (IPv6 without DAD), default routes via the subnets'
gateways, and optional extra routes. The bridge is made if this host has none yet, with the
network's VXLAN device when the host has an underlay (``scopenet.netlink.vxlan``, as the agent
makes it), and removed with the instance when nothing else is plugged into it. The demo, the tests
and ``scopenet instance`` use it; the "external host" of the seed scenario is one too, on the
external network's bridge.

Commands run inside it through ``nsenter --net=/proc/self/fd/N`` with the namespace passed as an
open fd, so this works even when the namespace's name is only visible to the namespace thread (a
private test sandbox); sockets can also be opened inside it directly, with no process at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyroute2.netlink.exceptions import NetlinkError

from scopenet.datapath import names
from scopenet.datapath.model import Vxlan
from scopenet.netlink.errors import KernelError
from scopenet.netlink.namespaces import Namespaces
from scopenet.netlink.rtnl import (
    IFA_F_NODAD,
    MISSING,
    index_of,
    link_by_index,
    link_by_name,
    open_ipr,
    wait_forwarding,
    write_sysctls,
)
from scopenet.netlink.vxlan import delete_bridge_if_empty, ensure_bridge

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

NAMESPACE_PREFIX = "qinst-"
IFNAME = "eth0"
SYSCTLS = (("net/ipv6/conf/all/accept_dad", "0"), ("net/ipv6/conf/default/accept_dad", "0"))


def instance_namespace(name: str) -> str:
    return NAMESPACE_PREFIX + name


def host_ifname(name: str, port_id: str | None = None) -> str:
    """Host end of the instance's veth: ``tap<port id[:11]>`` like Neutron, else from the name."""
    if port_id:
        return "tap" + str(port_id)[:11]
    return "ti-" + hashlib.sha1(name.encode()).hexdigest()[:12]


@dataclass
class TestInstance:
    __test__ = False  # not a pytest class, despite the name

    namespaces: Namespaces
    name: str
    host: str | None
    """The namespace the bridges live in (None: the caller's own)."""
    bridge: str
    mac: str
    addresses: list[str]
    gateways: list[str] = field(default_factory=list)
    routes: list[tuple[str, str]] = field(default_factory=list)
    mtu: int = 1500
    port_id: str | None = None
    vxlan: Vxlan | None = None
    """The network's VXLAN device, made with the bridge if the host has none yet (None: one host)."""

    @property
    def namespace(self) -> str:
        return instance_namespace(self.name)

    @property
    def peer(self) -> str:
        return host_ifname(self.name, self.port_id)

    @property
    def ips(self) -> list[str]:
        return [str(ipaddress.ip_interface(a).ip) for a in self.addresses]

    def ip(self, version: int) -> str:
        return next(ip for ip in self.ips if ipaddress.ip_address(ip).version == version)

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        namespaces: Namespaces,
        *,
        name: str,
        bridge: str,
        mac: str,
        addresses: Sequence[str],
        gateways: Sequence[str] = (),
        routes: Sequence[tuple[str, str]] = (),
        host: str | None = None,
        mtu: int = 1500,
        port_id: str | None = None,
        vxlan: Vxlan | None = None,
    ) -> TestInstance:
        inst = cls(
            namespaces,
            name,
            host,
            bridge,
            mac.lower(),
            list(addresses),
            list(gateways),
            list(routes),
            mtu,
            port_id,
            vxlan,
        )
        await inst._build()
        return inst

    async def _build(self) -> None:
        ns = self.namespaces
        name = self.namespace

        def prepare() -> socket.socket:
            write_sysctls(SYSCTLS)
            return ns.route_socket()

        sock = await ns.run(lambda: ns.create(name, prepare))
        assert sock is not None
        host_sock = await ns.call(self.host, ns.route_socket)
        host_fd = await ns.run(lambda: ns.open_fd(self.host))
        ipr, host = await open_ipr(sock), await open_ipr(host_sock)
        try:
            await ipr.link("set", index=1, state="up")
            await ipr.link(
                "add",
                ifname=IFNAME,
                kind="veth",
                address=self.mac,
                mtu=self.mtu,
                peer={"ifname": self.peer, "net_ns_fd": host_fd, "mtu": self.mtu},
            )
            eth0 = await index_of(ipr, IFNAME)
            await ipr.link("set", index=eth0, state="up")
            await self._plug(host)
            if await wait_forwarding(host, [self.peer]):
                raise KernelError(f"instance {self.name}: bridge port {self.peer} not forwarding after 2 s")
            for cidr in self.addresses:
                iface = ipaddress.ip_interface(cidr)
                flags = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
                await ipr.addr("add", index=eth0, address=str(iface.ip), prefixlen=iface.network.prefixlen, **flags)
            for gw in self.gateways:
                dst = "0.0.0.0/0" if ipaddress.ip_address(gw).version == 4 else "::/0"
                await ipr.route("replace", dst=dst, gateway=gw)
            for dst, via in self.routes:
                await ipr.route("replace", dst=dst, gateway=via)
        finally:
            ipr.close()
            host.close()
            os.close(host_fd)

    async def _plug(self, host: AsyncIPRoute) -> None:
        """Into the bridge, made if missing; again if the bridge went in between (an agent's last
        router on the network removed it: it was empty then)."""
        for attempt in range(3):
            br = await ensure_bridge(host, self.bridge, self.vxlan)
            try:
                await host.link("set", index=await index_of(host, self.peer), master=br, state="up")
                return
            except NetlinkError as exc:
                if exc.code not in MISSING or attempt == 2:
                    raise

    @classmethod
    def attach(cls, namespaces: Namespaces, name: str, *, host: str | None = None) -> TestInstance:
        """An existing instance by name (e.g. from another process), for ``exec``/``socket``/``delete``."""
        return cls(namespaces, name, host, bridge="", mac="", addresses=[])

    async def delete(self) -> None:
        """Unplug and remove the instance. Deleting ``eth0`` takes its bridge port with it at once
        (a namespace's own teardown is asynchronous); a network bridge left with no port but its
        VXLAN device goes too, so this host stops carrying the network."""
        ns = self.namespaces
        name = self.namespace
        if await ns.run(lambda: ns.identity(name)) is None:
            return
        ipr = await open_ipr(await ns.call(name, ns.route_socket))
        try:
            host = await open_ipr(await ns.call(self.host, ns.route_socket))
        except KernelError:  # the host namespace is gone, and its bridges with it
            host = None
        try:
            msg = await link_by_name(ipr, IFNAME)
            if msg is not None:
                bridge = await _bridge_of_peer(host, msg) if host is not None else None
                await ipr.link("del", index=msg["index"])
                if host is not None and bridge is not None and bridge.startswith(names.BRIDGE_PREFIX):
                    await delete_bridge_if_empty(host, bridge)
        finally:
            ipr.close()
            if host is not None:
                host.close()
        await ns.run(lambda: ns.delete(name))

    # -- using it ---------------------------------------------------------------------------------

    async def exec(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the instance; the completed process (never raises on exit codes)."""
        nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
        fd = await self.namespaces.run(lambda: self.namespaces.open_fd(self.namespace))
        try:
            proc = await asyncio.create_subprocess_exec(
                nsenter,
                f"--net=/proc/self/fd/{fd}",
                "--",
                *argv,
                pass_fds=(fd,),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        finally:
            os.close(fd)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise KernelError(f"{argv[0]} in instance {self.name} timed out after {timeout}s") from None
        code = proc.returncode if proc.returncode is not None else -1
        return subprocess.CompletedProcess(list(argv), code, out.decode(), err.decode())

    async def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket inside the instance (non-blocking, usable from the event loop)."""
        s = await self.namespaces.call(self.namespace, lambda: socket.socket(family, kind))
        s.setblocking(False)
        return s


async def _bridge_of_peer(host: AsyncIPRoute, eth0: Any) -> str | None:
    """The bridge the host end of ``eth0`` is plugged into (None: not found in that namespace)."""
    peer = await link_by_index(host, eth0.get("link")) if eth0.get("link") else None
    if peer is None or peer.get("link") != eth0["index"] or not peer.get("master"):
        return None
    bridge = await link_by_index(host, peer.get("master"))
    return bridge.get("ifname") if bridge is not None else None
