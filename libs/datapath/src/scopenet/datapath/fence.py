"""The host's fence: a dead man's switch that stops this host's routers when their agent stops.

Topology moves the routers of an agent it has not heard from for ``ttl`` seconds to another agent.
The kernel state of the old copies outlives the agent (a kill -9 leaves router namespaces
forwarding), so without a fence two copies of one router — same MACs, same addresses — would
answer on the same networks. The fence is one nftables table (family ``bridge``) in the host
namespace, the one holding the network bridges:

- ``router_ports``: the bridge-side ends of this agent's router ports;
- ``lease``: the Ethernet types a router speaks (ARP, IPv4, IPv6), each element with a timeout;
- one rule each way: a frame to or from a router port whose type has no live lease is dropped
  (and counted in ``fenced``) — from a port in ``prerouting``, before the bridge learns where its
  source MAC is, so a fenced copy cannot pull its router's MACs back to this host.

The agent renews the lease (a fraction of the heartbeat TTL) while it is alive and current; when it
stops — killed, hung, or cut off from NATS — the elements time out *in the kernel* and its routers
go quiet, before topology (which waits the whole TTL) brings up the new copies. Instances' ports
are never in ``router_ports``, so they keep talking to wherever their router now runs.

Everything here renders text for ``nft``; the adapter runs it in the host namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TABLE = "scopenet_fence"
FAMILY = "bridge"
LEASED_TYPES = ("arp", "ip", "ip6")
COUNTER = "fenced"


def setup() -> str:
    """Create the fence if missing and (re)write its rules, *keeping* the sets' elements: an agent
    restarting within its lease keeps its routers forwarding."""
    t = f"{FAMILY} {TABLE}"
    return "\n".join(
        [
            f"add table {t}",
            f"add set {t} router_ports {{ type ifname; }}",
            f"add set {t} lease {{ type ether_type; flags timeout; }}",
            f"add counter {t} {COUNTER}",
            # From a router port: dropped in prerouting, *before* the bridge learns the source MAC —
            # a fenced copy must not teach its host's bridge that the router's MACs are still here.
            f"add chain {t} prerouting {{ type filter hook prerouting priority 0; policy accept; }}",
            f"flush chain {t} prerouting",
            f'add rule {t} prerouting iifname @router_ports ether type != @lease counter name "{COUNTER}" drop',
            # To a router port (the output port is known only when forwarding, floods included).
            f"add chain {t} forward {{ type filter hook forward priority 0; policy accept; }}",
            f"flush chain {t} forward",
            f'add rule {t} forward oifname @router_ports ether type != @lease counter name "{COUNTER}" drop',
            "",
        ]
    )


def renew(router_ports: Iterable[str], lease_ms: int) -> str:
    """One transaction: the current router ports, and a lease of ``lease_ms`` from now."""
    if lease_ms <= 0:
        raise ValueError(f"lease must be positive, got {lease_ms} ms")
    t = f"{FAMILY} {TABLE}"
    ports = sorted(set(router_ports))
    lines = [f"flush set {t} router_ports", f"flush set {t} lease"]
    if ports:
        lines.append(f"add element {t} router_ports {{ {', '.join(_quote(p) for p in ports)} }}")
    lines.append(f"add element {t} lease {{ {', '.join(f'{k} timeout {lease_ms}ms' for k in LEASED_TYPES)} }}")
    return "\n".join([*lines, ""])


def _quote(ifname: str) -> str:
    if not ifname or len(ifname) > 15 or any(c in ifname for c in ' "\\/\n'):
        raise ValueError(f"invalid interface name {ifname!r}")
    return f'"{ifname}"'


def read(listing: dict[str, Any] | None) -> tuple[frozenset[str], frozenset[str], int]:
    """``(router ports, leased types, fenced packets)`` from ``nft -j list table bridge scopenet_fence``
    (empty when there is no table)."""
    ports: set[str] = set()
    leased: set[str] = set()
    fenced = 0
    for item in (listing or {}).get("nftables", []):
        if "set" in item:
            s = item["set"]
            values = {_element(e) for e in s.get("elem", [])}
            if s.get("name") == "router_ports":
                ports |= values
            elif s.get("name") == "lease":
                leased |= values
        elif "counter" in item and item["counter"].get("name") == COUNTER:
            fenced = int(item["counter"].get("packets", 0))
    return frozenset(ports), frozenset(leased), fenced


def _element(e: Any) -> str:
    # Elements with a timeout are listed as {"elem": {"val": ..., "timeout": ..., "expires": ...}}.
    if isinstance(e, dict) and "elem" in e:
        return str(e["elem"].get("val"))
    return str(e)
