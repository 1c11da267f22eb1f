"""A test fleet: several "hosts" on one machine, each with its own L3 agent, joined by an underlay.

Each host is an ``AgentSandbox`` (``scopenet.commands.bench.sandbox``): a private network and mount
namespace held by this process, its host namespace ``host`` inside, and the agent — the real
``scopenet service l3-agent`` (``tests.netns.stack.AgentProcess``) — started entirely in it, with
``SCOPENET_AGENT_ID=host-<k>`` and that host's VXLAN settings. The underlay is a bridge in a
private namespace of the fleet's own (``Namespaces(private=True)``: its thread's home), with a veth
into each host namespace (``underlay0``, 10.250.0.<k+1>/24, MTU 1500 — an ordinary network's: the
networks' MTU is 1450 in topology, by default and at most, which is 1500 minus VXLAN's 50 bytes,
as in Neutron; multicast snooping off, as a switch with no IGMP querier floods).
Networks span the hosts as VXLAN (VNI = segmentation id) that the agents and the instance plug tool
make for the networks each host needs.

What failover tests need, each a host at a time: ``kill_agent``/``start_agent`` (SIGKILL; a new
process that adopts what the old one left), ``cut_nats``/``restore_nats`` (the host's relay to NATS
closes its connections and refuses new ones), ``cut_underlay``/``restore_underlay`` (the host's
underlay port down: its VXLAN traffic goes nowhere), and ``plug``/``unplug``/``ping`` for instances.

Nothing here touches the machine's network: every namespace is private to this process and
vanishes with it (``close`` removes them in order; a crash or kill -9 removes them too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from scopenet.commands.instance import plug
from scopenet.datapath import names
from scopenet.datapath.model import Underlay
from scopenet.netlink import Namespaces, TestInstance
from scopenet.netlink.rtnl import index_of, link_by_name, open_ipr
from scopenet.services.topology.settings import TopologySettings
from tests.integration.conftest import ADMIN
from tests.netns.probes import ping
from tests.netns.stack import AgentProcess, Box, Stack

UNDERLAY_BRIDGE = "underlay"
UNDERLAY_MTU = 1500
"""The networks' 1450 (topology's ``MAX_MTU``) + 50 of VXLAN over IPv4 (outer IPv4 20, UDP 8,
VXLAN 8, inner Ethernet 14)."""
UNDERLAY_LINK = "underlay0"
"""The underlay link in every host namespace (holds the host's VXLAN local address)."""
VXLAN_GROUP = "239.1.1.1"
TOPOLOGY = TopologySettings(topology_reconcile_interval=1.0, topology_stale_after=3.0, topology_agent_ttl=10.0)
"""Topology for a fleet: the issue's heartbeat TTL (10 s) — a module sets it as its ``TOPOLOGY``."""


def local_ip(k: int) -> str:
    return f"10.250.0.{k + 1}"


@dataclass
class Host:
    index: int
    box: Box
    agent: AgentProcess
    underlay: Underlay

    @property
    def name(self) -> str:
        return f"host-{self.index}"

    @property
    def uplink(self) -> str:
        """The host's port on the underlay bridge (in the fleet's own namespace)."""
        return f"ul-{self.name}"


class Fleet:
    """``hosts`` agents on one stack (see the module docstring); ``async with Fleet(stack) as fleet``."""

    def __init__(self, stack: Stack, *, hosts: int = 3, agent_env: Mapping[str, str] | None = None) -> None:
        self.stack = stack
        self.size = hosts
        self.agent_env = dict(agent_env or {})
        self.ns = Namespaces(private=True)
        """The underlay's namespace: the home of this thread, private to the fleet."""
        self.hosts: list[Host] = []

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, ready_timeout: float = 60) -> Self:
        await self.ns.start()
        try:
            ipr = await open_ipr(await self.ns.run(self.ns.route_socket))
            try:
                await ipr.link("add", ifname=UNDERLAY_BRIDGE, kind="bridge", br_mcast_snooping=0)
                bridge = await index_of(ipr, UNDERLAY_BRIDGE)
                await ipr.link("set", index=bridge, state="up")
                for k in range(self.size):
                    self.hosts.append(await self._host(k, ipr, bridge))
            finally:
                ipr.close()
            await asyncio.gather(*(h.agent.ready(ready_timeout) for h in self.hosts))
        except BaseException:
            await self.close()
            raise
        return self

    async def _host(self, k: int, ipr: Any, bridge: int) -> Host:
        box = Box()
        await box.start()
        try:
            box.nats_url = await box.expose(self.stack.nats_url)
            host_fd = await box.ns.run(lambda: box.ns.open_fd(box.host))
            try:
                uplink = f"ul-host-{k}"
                await ipr.link(
                    "add",
                    ifname=uplink,
                    kind="veth",
                    mtu=UNDERLAY_MTU,
                    peer={"ifname": UNDERLAY_LINK, "net_ns_fd": host_fd, "mtu": UNDERLAY_MTU},
                )
            finally:
                os.close(host_fd)
            await ipr.link("set", index=await index_of(ipr, uplink), master=bridge, state="up")
            host = box.kernel.host_route()
            link = await index_of(host, UNDERLAY_LINK)
            await host.addr("add", index=link, address=local_ip(k), prefixlen=24)
            await host.link("set", index=link, state="up")
            underlay = Underlay(local_ip=local_ip(k), group=VXLAN_GROUP)
            env = {
                "SCOPENET_VXLAN_LOCAL_IP": underlay.local_ip,
                "SCOPENET_VXLAN_GROUP": underlay.group,
                "SCOPENET_STATE_DIR": str(self.stack.tmp / f"host-{k}-state"),
                **self.agent_env,
            }
            agent = AgentProcess(box, self.stack, agent_id=f"host-{k}", **env).start()
        except BaseException:
            await box.close()
            raise
        return Host(k, box, agent, underlay)

    async def close(self) -> None:
        for h in self.hosts:
            with contextlib.suppress(Exception):
                await h.agent.stop()
        for h in self.hosts:
            await h.box.close()
        self.hosts.clear()
        await self.ns.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- faults ---------------------------------------------------------------------------------

    def kill_agent(self, k: int) -> None:
        """SIGKILL host k's agent: its kernel state stays, as on a host whose agent died."""
        self.hosts[k].agent.kill9()

    async def start_agent(self, k: int, *, wait: bool = True, timeout: float = 60) -> float:
        """Start host k's agent again (adopting what is in its kernel); seconds to ready (0: not waited)."""
        agent = self.hosts[k].agent.start()
        return await agent.ready(timeout) if wait else 0.0

    def cut_nats(self, k: int) -> None:
        """Cut host k off from NATS: its live connections are closed, new ones refused."""
        self.hosts[k].box.cut()

    def restore_nats(self, k: int) -> None:
        self.hosts[k].box.restore()

    async def cut_underlay(self, k: int) -> None:
        """Host k's port on the underlay down: nothing it sends over VXLAN arrives, nothing reaches it."""
        await self._uplink(k, "down")

    async def restore_underlay(self, k: int) -> None:
        await self._uplink(k, "up")

    async def _uplink(self, k: int, state: str) -> None:
        ipr = await open_ipr(await self.ns.run(self.ns.route_socket))
        try:
            await ipr.link("set", index=await index_of(ipr, self.hosts[k].uplink), state=state)
        finally:
            ipr.close()

    # -- instances ------------------------------------------------------------------------------

    async def plug(self, k: int, port_id: Any, name: str, *, routes: Sequence[tuple[str, str]] = ()) -> TestInstance:
        """An instance for the port on host k (``scopenet instance create`` there: the network's
        bridge and VXLAN device are made if host k has none yet)."""
        h = self.hosts[k]
        return await plug.create(
            h.box.ns,
            self.stack.topo.bus,
            port_id=port_id,
            name=name,
            host=h.box.host,
            routes=routes,
            underlay=h.underlay,
        )

    async def unplug(self, k: int, name: str) -> bool:
        """Remove host k's instance (and its network's bridge there if nothing else uses it)."""
        h = self.hosts[k]
        return await plug.delete(h.box.ns, name=name, host=h.box.host)

    @staticmethod
    async def ping(src: TestInstance, dst: str, *, timeout: float = 1.0) -> bool:
        """One real ICMP echo from the instance (wherever it runs)."""
        return await ping(src, dst, timeout=timeout)

    # -- what is where --------------------------------------------------------------------------

    def host(self, agent_id: str) -> Host:
        return next(h for h in self.hosts if h.name == agent_id)

    async def router_host(self, router_id: Any) -> Host | None:
        """The host topology placed the router on (None: on no live agent)."""
        spec = await self.stack.topo("router.spec", ADMIN, id=router_id)
        return self.host(spec.agent_id) if spec.agent_id else None

    async def routers(self, k: int) -> list[str]:
        """Router namespaces in host k's kernel (whoever made them)."""
        return await self.hosts[k].box.kernel.routers()

    async def links(self, k: int, kind: str) -> set[str]:
        """Names of host k's host-namespace links of one kind (``vxlan``, ``bridge``, ``veth``)."""
        host = self.hosts[k].box.kernel.host_route()
        return {
            m.get("ifname")
            async for m in await host.link("dump")
            if m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == kind
        }

    async def vxlans(self, k: int) -> set[int]:
        """VNIs of the VXLAN devices on host k, each checked to be plugged into its network's bridge."""
        host = self.hosts[k].box.kernel.host_route()
        out = set()
        for name in await self.links(k, "vxlan"):
            msg = await link_by_name(host, name)
            vni = int(name.removeprefix(names.VXLAN_PREFIX))
            bridge = await link_by_name(host, names.bridge(vni))
            if msg is not None and bridge is not None and msg.get("master") == bridge["index"]:
                out.add(vni)
        return out
