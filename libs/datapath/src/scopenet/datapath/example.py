"""The seed's router1 as a hand-written RouterSpec, and the instances around it (no kernel here).

Topology (docs/datapath.md): the external network 203.0.113.64/26 + 2001:db8::/64 is in scope A / A6;
network1 198.51.100.0/26 + 2001:db8:80d2:c4d3::/64 is unscoped; network2 203.0.113.0/26 +
2001:db8:a583::/64 is in A / A6. The router's gateway is .66 / ::66, the external host .100 / ::100
with routes to the internal networks via the gateway (what BGP would give it for the scoped ones;
for the unscoped one it lets the test prove the router drops the traffic).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from scopenet.contracts.routerspec import (
    FloatingIp,
    Gateway,
    PortAddress,
    PortForwarding,
    RouterPort,
    RouterSpec,
    Scope,
)
from scopenet.datapath import names

ROUTER1 = UUID("5f0c2a64-3b1e-4d59-9a3e-0c1d2e3f4a01")
GW_PORT = UUID("9e3c1d2a-7b4f-4c1e-8a6d-2f5b7c9d1e01")
NET1_PORT = UUID("1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c01")
NET2_PORT = UUID("2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d01")
FIP = UUID("f1f1f1f1-0000-4000-8000-000000000001")
INST1_PORT = UUID("aa000001-0000-4000-8000-000000000001")
INST2_PORT = UUID("aa000002-0000-4000-8000-000000000002")
EXT_HOST_PORT = UUID("aa000003-0000-4000-8000-000000000003")

SCOPE_A = Scope(id=UUID("a0000000-0000-4000-8000-00000000000a"), mark_id=1025)
SCOPE_A6 = Scope(id=UUID("a0000000-0000-4000-8000-0000000000a6"), mark_id=1026)
NOSCOPE = Scope()

EXT_SEG, NET1_SEG, NET2_SEG = 1000, 1001, 1002
FLOATING_IP = "203.0.113.80"


def _addr(ip: str, prefixlen: int, cidr: str, gateway_ip: str | None = None) -> PortAddress:
    return PortAddress(
        ip_address=ip,
        prefixlen=prefixlen,
        subnet_id=uuid.uuid5(uuid.NAMESPACE_URL, cidr),
        cidr=cidr,
        gateway_ip=gateway_ip,
    )


def router1(
    *,
    revision: int = 1,
    agent_id: str = "agent-1",
    router_id: UUID = ROUTER1,
    network2_scoped: bool = True,
    floating_ip: bool = True,
    enable_snat: bool = True,
    port_ids: tuple[UUID, UUID, UUID] = (GW_PORT, NET1_PORT, NET2_PORT),
    ext_seg: int = EXT_SEG,
    net_segs: tuple[int, int] = (NET1_SEG, NET2_SEG),
) -> RouterSpec:
    """The seed's router1; ``network2_scoped=False`` is subnet-pool-ip4 moved out of scope A."""
    gw_port, net1_port, net2_port = port_ids
    gateway = Gateway(
        port_id=gw_port,
        mac_address="fa:16:3e:00:00:66",
        network_id=uuid.uuid5(uuid.NAMESPACE_URL, "ext"),
        segmentation_id=ext_seg,
        addresses=[
            _addr("203.0.113.66", 26, "203.0.113.64/26", "203.0.113.65"),
            _addr("2001:db8::66", 64, "2001:db8::/64", "2001:db8::65"),
        ],
        scope_v4=SCOPE_A,
        scope_v6=SCOPE_A6,
        enable_snat=enable_snat,
    )
    net1 = RouterPort(
        port_id=net1_port,
        mac_address="fa:16:3e:00:01:01",
        network_id=uuid.uuid5(uuid.NAMESPACE_URL, "network1"),
        segmentation_id=net_segs[0],
        addresses=[
            _addr("198.51.100.1", 26, "198.51.100.0/26"),
            _addr("2001:db8:80d2:c4d3::1", 64, "2001:db8:80d2:c4d3::/64"),
        ],
    )
    net2 = RouterPort(
        port_id=net2_port,
        mac_address="fa:16:3e:00:02:01",
        network_id=uuid.uuid5(uuid.NAMESPACE_URL, "network2"),
        segmentation_id=net_segs[1],
        addresses=[_addr("203.0.113.1", 26, "203.0.113.0/26"), _addr("2001:db8:a583::1", 64, "2001:db8:a583::/64")],
        scope_v4=SCOPE_A if network2_scoped else NOSCOPE,
        scope_v6=SCOPE_A6,
    )
    fips = [FloatingIp(id=FIP, floating_ip_address=FLOATING_IP, fixed_ip_address="198.51.100.3", port_id=INST1_PORT)]
    return RouterSpec(
        router_id=router_id,
        revision=revision,
        agent_id=agent_id,
        gateway=gateway,
        interfaces=[net1, net2],
        floating_ips=fips if floating_ip else [],
    )


def random_router(*, agent_id: str = "agent-1", ext_seg: int = EXT_SEG, net_segs: tuple[int, int]) -> RouterSpec:
    """A router1 with fresh ids on networks of its own (the external network is shared)."""
    return router1(
        agent_id=agent_id,
        router_id=uuid.uuid4(),
        port_ids=(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()),
        ext_seg=ext_seg,
        net_segs=net_segs,
        floating_ip=False,
    )


@dataclass(frozen=True)
class InstanceSpec:
    name: str
    segmentation_id: int
    mac: str
    addresses: tuple[str, ...]
    gateways: tuple[str, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()
    port_id: UUID | None = None

    @property
    def bridge(self) -> str:
        return names.bridge(self.segmentation_id)


INSTANCE1 = InstanceSpec(
    "instance1",
    NET1_SEG,
    "fa:16:3e:52:b6:9f",
    ("198.51.100.3/26", "2001:db8:80d2:c4d3::3/64"),
    ("198.51.100.1", "2001:db8:80d2:c4d3::1"),
    port_id=INST1_PORT,
)
INSTANCE2 = InstanceSpec(
    "instance2",
    NET2_SEG,
    "fa:16:3e:42:1e:eb",
    ("203.0.113.3/26", "2001:db8:a583::3/64"),
    ("203.0.113.1", "2001:db8:a583::1"),
    port_id=INST2_PORT,
)
EXT_HOST = InstanceSpec(
    "ext-host",
    EXT_SEG,
    "fa:16:3e:ee:00:64",
    ("203.0.113.100/26", "2001:db8::100/64"),
    routes=(
        ("203.0.113.0/26", "203.0.113.66"),
        ("2001:db8:a583::/64", "2001:db8::66"),
        ("198.51.100.0/26", "203.0.113.66"),
        ("2001:db8:80d2:c4d3::/64", "2001:db8::66"),
    ),
    port_id=EXT_HOST_PORT,
)


#: A second floating IP of the external network, for port forwardings (router1's own is ``.68``).
PF_FIP = "203.0.113.81"


def port_forwarding(
    n: int, proto: str, ext: tuple[int, int], address: str, inner: tuple[int, int], **kw: object
) -> PortForwarding:
    """Forwarding ``n`` of ``PF_FIP``: ``proto`` ports ``ext`` (first, last) to ``address`` ports ``inner``."""
    return PortForwarding(
        id=uuid.UUID(int=n),
        floating_ip_address=PF_FIP,
        protocol=proto,
        external_port_start=ext[0],
        external_port_end=ext[1],
        internal_ip_address=address,
        internal_port_start=inner[0],
        internal_port_end=inner[1],
        **kw,
    )
