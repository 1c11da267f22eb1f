"""Test instances from ports: what ``scopenet instance create/exec/delete`` do.

An instance is a network namespace ``qinst-<name>`` with one interface, ``eth0``, plugged into the
bridge of the port's network (``brq-<segmentation id>``) in the stack's host namespace, with the
port's MAC and addresses and a default route via each of its subnets' gateways — what Nova and
the L2 agent would give a VM, without either (``scopenet.netlink.TestInstance``). On a host with an
underlay (``SCOPENET_VXLAN_LOCAL_IP``, as its L3 agent has) a bridge made here gets the network's
VXLAN device, so the instance reaches its router wherever that runs.

The port, its network and subnets are looked up over NATS (topology's ``port.get``,
``network.get``, ``subnet.get``, as an admin), so the instance matches what the API shows. The
stack is found the way every ``scopenet`` command finds it: a running ``scopenet up`` recorded its
NATS URL and host namespace in ``<state dir>/stack.json``; ``SCOPENET_NATS_URL`` and
``SCOPENET_AGENT_HOST_NETNS`` override them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import nats

from scopenet.bus.client import BusClient
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.contracts.subjects import TOPOLOGY_ENDPOINTS, Endpoint
from scopenet.datapath import names
from scopenet.datapath.model import Underlay
from scopenet.datapath.render import network_vxlan
from scopenet.infra.embedded import running_stack
from scopenet.netlink import Namespaces, TestInstance
from scopenet.netlink.instance import instance_namespace
from scopenet.services.l3_agent.settings import AgentSettings

ADMIN = CallContext(project_id="scopenet-instance", roles=["admin"], request_id="scopenet-instance")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class InstanceError(Exception):
    """One line for the user (no traceback)."""


@dataclass(frozen=True)
class Stack:
    nats_url: str
    host_netns: str | None
    """The namespace the bridges live in (None: the machine's own, as an agent with it unset)."""


def find_stack(settings: AgentSettings) -> Stack:
    """The running stack: ``scopenet up``'s record in the state dir, overridden by the agent's settings
    (an instance plugs into the bridges of this host's agent)."""
    record = running_stack(settings.state_dir) or {}
    nats_url = settings.nats_url or record.get("nats_url")
    if not nats_url:
        raise InstanceError(
            f"scopenet: no running `scopenet up` in {settings.state_dir} (use --state-dir or SCOPENET_STATE_DIR) "
            "and SCOPENET_NATS_URL is not set"
        )
    host = settings.agent_host_netns or record.get("host_netns")
    if record and not host and not settings.nats_url:
        raise InstanceError("scopenet: the running stack has no L3 agent (it needs root), so no bridges to plug into")
    return Stack(nats_url, host)


@dataclass(frozen=True)
class PortView:
    """What an instance needs from a port: the bridge, the MAC, the addresses, the gateways."""

    port_id: str
    name: str
    mac: str
    bridge: str
    segmentation_id: int
    mtu: int
    addresses: list[str]
    gateways: list[str]


def _ep(tail: str) -> Endpoint[Any, Any]:
    return next(e for e in TOPOLOGY_ENDPOINTS if e.subject.endswith("." + tail))


async def port_view(bus: BusClient, port_id: UUID | str) -> PortView:
    port = (await bus.call(_ep("port.get"), ByIdCommand(context=ADMIN, id=port_id))).port
    network = (await bus.call(_ep("network.get"), ByIdCommand(context=ADMIN, id=port.network_id))).network
    addresses: list[str] = []
    gateways: dict[int, str] = {}
    for fixed in port.fixed_ips:
        subnet = (await bus.call(_ep("subnet.get"), ByIdCommand(context=ADMIN, id=fixed.subnet_id))).subnet
        net = ipaddress.ip_network(subnet.cidr)
        addresses.append(f"{fixed.ip_address}/{net.prefixlen}")
        if subnet.gateway_ip:
            gateways.setdefault(net.version, str(subnet.gateway_ip))  # one default route per family
    if not addresses:
        raise InstanceError(f"scopenet: port {port_id} has no fixed IPs")
    return PortView(
        port_id=str(port.id),
        name=port.name,
        mac=port.mac_address,
        bridge=names.bridge(network.provider_segmentation_id),
        segmentation_id=network.provider_segmentation_id,
        mtu=network.mtu,
        addresses=addresses,
        gateways=[gateways[v] for v in sorted(gateways)],
    )


def default_name(view: PortView) -> str:
    return view.name if NAME.match(view.name) else view.port_id[:8]


async def create(
    namespaces: Namespaces,
    bus: BusClient,
    *,
    port_id: UUID | str,
    name: str | None,
    host: str | None,
    routes: Sequence[tuple[str, str]] = (),
    underlay: Underlay | None = None,
) -> TestInstance:
    """Plug an instance for the port into its network; refuses a name already in use.
    ``underlay``: the host's VXLAN settings (a bridge made here gets the network's VXLAN device)."""
    view = await port_view(bus, port_id)
    name = name or default_name(view)
    if not NAME.match(name):
        raise InstanceError(f"scopenet: instance name {name!r}: use 1-40 of [A-Za-z0-9_-]")
    if await namespaces.run(lambda: namespaces.identity(instance_namespace(name))) is not None:
        raise InstanceError(f"scopenet: instance {name} exists (scopenet instance delete {name})")
    if host is not None and await namespaces.run(lambda: namespaces.identity(host)) is None:
        raise InstanceError(f"scopenet: host namespace {host} does not exist (is the L3 agent running?)")
    return await TestInstance.create(
        namespaces,
        name=name,
        bridge=view.bridge,
        mac=view.mac,
        addresses=view.addresses,
        gateways=view.gateways,
        routes=routes,
        host=host,
        mtu=view.mtu,
        port_id=view.port_id,
        vxlan=network_vxlan(view.segmentation_id, underlay) if underlay is not None else None,
    )


async def delete(namespaces: Namespaces, *, name: str, host: str | None) -> bool:
    """Unplug and remove the instance; False when there was none."""
    if await namespaces.run(lambda: namespaces.identity(instance_namespace(name))) is None:
        return False
    await TestInstance.attach(namespaces, name, host=host).delete()
    return True


def exec_argv(namespaces: Namespaces, *, name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside the instance (for ``os.execv``: the terminal,
    signals and the exit code stay the user's)."""
    path = namespaces.path(instance_namespace(name))
    if not os.path.exists(path):
        raise InstanceError(f"scopenet: no instance {name} ({path} does not exist)")
    if not argv:
        raise InstanceError("scopenet: nothing to run (scopenet instance exec NAME -- COMMAND...)")
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    return [nsenter, f"--net={path}", "--", *argv]


async def connect(nats_url: str, timeout: float) -> tuple[Any, BusClient]:
    nc = await nats.connect(nats_url, name="scopenet-instance", max_reconnect_attempts=0, connect_timeout=5)
    return nc, BusClient(nc, timeout=timeout)


def describe(inst: TestInstance, host: str | None) -> str:
    gws = ", ".join(inst.gateways) or "none"
    return (
        f"instance {inst.name}: namespace {inst.namespace}, eth0 {inst.mac} {' '.join(inst.addresses)}, "
        f"default via {gws}; plugged into {inst.bridge} ({inst.peer}) in {host or 'the host namespace'}"
    )
