"""The datapath's vocabulary: what a router should look like, what the kernel has, and the steps between.

Everything here is a frozen dataclass of plain strings and ints, so states compare with ``==``,
plans are golden-testable, and the adapter that touches the kernel (``scopenet.netlink``) needs
nothing from the contracts. ``namespace=None`` in an action means the *host* namespace (the one the
bridges live in), whichever namespace the agent was told to treat as the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# -- desired and observed state ------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Veth:
    """One router port: ``name`` inside the router namespace, ``peer`` on ``bridge`` in the host."""

    name: str
    peer: str
    bridge: str
    mac: str
    mtu: int


@dataclass(frozen=True)
class Underlay:
    """How this host's networks reach the other hosts' (Neutron linuxbridge's ``[vxlan] local_ip``
    and ``vxlan_group``): every network bridge gets a VXLAN device too, VNI = the network's
    segmentation id, sending from ``local_ip`` and flooding to the multicast ``group``. None wherever
    an underlay is asked for means a single host: bridges only."""

    local_ip: str
    group: str
    port: int = 4789
    """UDP destination port (IANA's 4789; Linux's own default, 8472, is pre-standard)."""


@dataclass(frozen=True, order=True)
class Vxlan:
    """One network's VXLAN device on the host: a port of the network's bridge. Its underlay link
    (``dev``) is the one holding ``local_ip``, looked up when the device is made."""

    name: str
    bridge: str
    vni: int
    local_ip: str
    group: str
    port: int


@dataclass(frozen=True, order=True)
class Address:
    ifname: str
    cidr: str
    """Interface address with its prefix length, normalised (``2001:db8::66/64``)."""


@dataclass(frozen=True, order=True)
class Route:
    dst: str
    """Normalised network (``0.0.0.0/0``, ``::/0``, ``10.0.0.0/8``)."""
    via: str


@dataclass(frozen=True)
class NftTable:
    text: str
    """The complete ``nft -f`` transaction that replaces the router's table atomically."""
    digest: str
    """Hash of the rules, also written into the table (a rule comment), so it can be read back."""
    owner: str
    """The agent that owns the router; written into the table too, so orphans can be recognised."""


@dataclass(frozen=True)
class RouterState:
    """Everything one router needs in the kernel."""

    router_id: str
    namespace: str
    veths: tuple[Veth, ...]
    addresses: frozenset[Address]
    routes: frozenset[Route]
    sysctls: tuple[tuple[str, str], ...]
    """``(path under /proc/sys, value)`` inside the router namespace."""
    nft: NftTable
    nft_fingerprint: str | None = None
    """What the kernel showed after the last apply of ``nft`` (None: unknown, e.g. after a restart,
    in which case the table is replaced once so that no hand-made change survives a restart)."""
    vxlans: tuple[Vxlan, ...] = ()
    """One per bridge when the host has an underlay (``Underlay``), none on a single host."""

    @property
    def bridges(self) -> tuple[str, ...]:
        return tuple(sorted({v.bridge for v in self.veths}))


@dataclass(frozen=True)
class LinkObs:
    """A link inside a router namespace, with its host-side peer (None: not found in the host)."""

    name: str
    kind: str
    mac: str
    mtu: int
    up: bool
    peer: PeerObs | None = None


@dataclass(frozen=True)
class PeerObs:
    name: str
    master: str | None
    mtu: int
    up: bool


@dataclass(frozen=True)
class BridgeObs:
    up: bool


@dataclass(frozen=True)
class VxlanObs:
    """A host link found under a ``Vxlan``'s name (``kind`` says whether it is one at all)."""

    kind: str
    vni: int | None
    local_ip: str | None
    group: str | None
    port: int | None
    learning: bool
    master: str | None
    up: bool

    def matches(self, want: Vxlan) -> bool:
        """Made as ``want`` asks (whatever it is plugged into: that is a ``SetLink`` away)."""
        return (self.kind, self.vni, self.local_ip, self.group, self.port, self.learning) == (
            "vxlan",
            want.vni,
            want.local_ip,
            want.group,
            want.port,
            True,
        )


@dataclass(frozen=True)
class NftObs:
    digest: str | None
    owner: str | None
    fingerprint: str


@dataclass(frozen=True)
class ObservedRouter:
    """What the kernel has for one router (and the host-side objects it uses)."""

    router_id: str
    namespace: str
    namespace_exists: bool
    links: dict[str, LinkObs] = field(default_factory=dict)
    addresses: frozenset[Address] = frozenset()
    routes: frozenset[Route] = frozenset()
    sysctls: dict[str, str] = field(default_factory=dict)
    nft: NftObs | None = None
    host_peers: dict[str, PeerObs] = field(default_factory=dict)
    """Host-side links looked up by the names the desired state uses (stale ones are found here)."""
    bridges: dict[str, BridgeObs] = field(default_factory=dict)
    """The bridges the desired state needs (missing ones are absent from the dict)."""
    vxlans: dict[str, VxlanObs] = field(default_factory=dict)
    """Host links under the names of the desired state's VXLAN devices (missing ones are absent)."""


# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateNamespace:
    """Create the namespace already holding its sysctls and nft table: a router namespace never
    exists without its owner label, and a crash in the middle leaves nothing behind."""

    namespace: str
    sysctls: tuple[tuple[str, str], ...]
    nft: str


@dataclass(frozen=True)
class DeleteNamespace:
    namespace: str


@dataclass(frozen=True)
class EnsureBridge:
    name: str
    vxlan: Vxlan | None = None
    """Its VXLAN device, made with it (None: a single host)."""


@dataclass(frozen=True)
class EnsureVxlan:
    """Make the bridge's VXLAN device as asked (a link under its name made otherwise is replaced),
    plugged into the bridge and up."""

    vxlan: Vxlan


@dataclass(frozen=True)
class DeleteBridge:
    """Remove the bridge if it has no ports left — its VXLAN device does not count, and goes with
    it. Whether it is empty is decided when applied (under the adapter's bridge lock), not when
    planned: routers sharing a bridge are reconciled concurrently, and only the last one to leave
    sees it empty."""

    name: str


@dataclass(frozen=True)
class CreateVeth:
    namespace: str
    veth: Veth
    vxlan: Vxlan | None = None
    """The bridge's VXLAN device, in case the bridge has to be made again (another router's last
    port left it between observing and applying)."""


@dataclass(frozen=True)
class DeleteLink:
    namespace: str | None
    name: str


@dataclass(frozen=True)
class DeleteLinks:
    """Remove a router's links at once (one batched unregistration instead of one per veth, each
    of which waits for an RCU grace period under the kernel's rtnl lock)."""

    namespace: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class SetLink:
    """Bring a link's attributes to the given values (None: leave as is)."""

    namespace: str | None
    name: str
    mac: str | None = None
    mtu: int | None = None
    master: str | None = None
    up: bool = True


@dataclass(frozen=True)
class AddAddress:
    namespace: str
    address: Address


@dataclass(frozen=True)
class DeleteAddress:
    namespace: str
    address: Address


@dataclass(frozen=True)
class ReplaceRoute:
    namespace: str
    route: Route


@dataclass(frozen=True)
class DeleteRoute:
    namespace: str
    route: Route


@dataclass(frozen=True)
class SetSysctl:
    namespace: str
    key: str
    value: str


@dataclass(frozen=True)
class ReplaceNftTable:
    namespace: str
    text: str


@dataclass(frozen=True)
class Announce:
    """Tell the network a port is (now) here: a gratuitous ARP per IPv4 address and an unsolicited
    neighbour advertisement per IPv6 address, broadcast / to all nodes. A router that moved to
    another host keeps its MACs, so the bridges' (and VXLAN's) learnt locations of those MACs
    still point at the old host until a frame from the new one arrives: this is that frame.
    Applied after the ports are forwarding."""

    namespace: str
    ifname: str
    mac: str
    addresses: tuple[str, ...]
    """Plain addresses (no prefix length)."""


Action = (
    CreateNamespace
    | DeleteNamespace
    | EnsureBridge
    | EnsureVxlan
    | DeleteBridge
    | CreateVeth
    | DeleteLink
    | DeleteLinks
    | SetLink
    | AddAddress
    | DeleteAddress
    | ReplaceRoute
    | DeleteRoute
    | SetSysctl
    | ReplaceNftTable
    | Announce
)


@dataclass(frozen=True)
class Plan:
    """The ordered steps from the observed state to the desired one; empty when they agree."""

    router_id: str
    namespace: str
    actions: tuple[Action, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.actions)

    def describe(self) -> list[str]:
        """One line per action, for logs and golden tests (the nft text is summarised)."""
        return [describe(a) for a in self.actions]


def _vxlan(v: Vxlan) -> str:
    return f"{v.name} (vni {v.vni}, local {v.local_ip}, group {v.group}, dstport {v.port})"


def _where(namespace: str | None) -> str:
    return "host" if namespace is None else "router"


def describe(action: Action) -> str:
    where = _where
    match action:
        case CreateNamespace(namespace=ns, sysctls=s):
            return f"create namespace {ns} ({len(s)} sysctls, nft table)"
        case DeleteNamespace(namespace=ns):
            return f"delete namespace {ns}"
        case EnsureBridge(name=n, vxlan=None):
            return f"ensure bridge {n}"
        case EnsureBridge(name=n, vxlan=Vxlan() as vx):
            return f"ensure bridge {n} with {_vxlan(vx)}"
        case EnsureVxlan(vxlan=vx):
            return f"ensure {_vxlan(vx)} on {vx.bridge}"
        case DeleteBridge(name=n):
            return f"delete bridge {n} if empty"
        case CreateVeth(veth=v):
            return f"create veth {v.name} <-> {v.peer} on {v.bridge} mac {v.mac} mtu {v.mtu}"
        case DeleteLink(namespace=ns, name=n):
            return f"delete link {n} ({where(ns)})"
        case DeleteLinks(names=ns_names):
            return f"delete links {' '.join(ns_names)}"
        case SetLink(namespace=ns, name=n, mac=mac, mtu=mtu, master=master, up=up):
            parts = [f"set link {n} ({where(ns)})"]
            parts += [f"mac {mac}"] if mac else []
            parts += [f"mtu {mtu}"] if mtu else []
            parts += [f"master {master}"] if master else []
            parts += ["up"] if up else ["down"]
            return " ".join(parts)
        case AddAddress(address=a):
            return f"add address {a.cidr} dev {a.ifname}"
        case DeleteAddress(address=a):
            return f"delete address {a.cidr} dev {a.ifname}"
        case ReplaceRoute(route=r):
            return f"replace route {r.dst} via {r.via}"
        case DeleteRoute(route=r):
            return f"delete route {r.dst} via {r.via}"
        case SetSysctl(key=k, value=v):
            return f"sysctl {k}={v}"
        case ReplaceNftTable():
            return "replace nft table"
        case Announce(ifname=n, addresses=addrs):
            return f"announce {' '.join(addrs)} on {n}"
    raise AssertionError(action)
