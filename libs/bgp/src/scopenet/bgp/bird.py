"""BIRD 2 configuration for the BGP speakers of one host: pure, so it is unit-tested on its own.

One BIRD process serves every speaker the host runs. Each speaker gets a routing table of its own,
filled by a ``static`` protocol with its announcements (``route <prefix> via <router gateway>``),
and one ``bgp`` protocol per peer exporting that table only, so a peer of speaker A never hears
speaker B's routes. No ``kernel`` protocol: the speaker never touches the host's routing table.

The next hop a peer receives is the router's gateway address, not the speaker's (neutron-dynamic-
routing's "third-party next hop"): BIRD sends a static route's gateway as the BGP next hop when
the gateway and the peer are on the same interface, which holds when the host has a leg on the
external network — where the peer must be anyway to reach the gateway. A gateway the host cannot
reach leaves the route inactive (not announced) instead of announcing a next hop nobody reaches.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from scopenet.contracts.bgp import BgpSpeakerSpec

_PASSWORD_OK = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class Timers:
    """Short by default: a restarted peer or speaker reconnects within about a second."""

    connect_retry: int = 1
    connect_delay: int = 1
    error_wait: tuple[int, int] = (1, 4)
    hold: int = 9
    keepalive: int = 3


def _hex(id_: object) -> str:
    return str(id_).replace("-", "")


def protocol_name(speaker_id: object, peer_id: object) -> str:
    """The BGP protocol of one (speaker, peer) pair (BIRD symbols are at most 64 characters)."""
    return f"p_{_hex(speaker_id)}_{_hex(peer_id)[-20:]}"


def _quote(password: str) -> str:
    if not _PASSWORD_OK.match(password) or '"' in password or "\\" in password:
        raise ValueError("a BGP password BIRD can quote: printable ASCII without quotes or backslashes")
    return f'"{password}"'


def render(specs: Iterable[BgpSpeakerSpec], *, router_id: str | None = None, timers: Timers = Timers()) -> str:
    """The whole ``bird.conf`` for these speakers (``present=false`` ones are left out)."""
    lines = [
        "# scopenet bgp-speaker: generated, do not edit",
        "log stderr { info, remote, warning, error, fatal, bug };",
    ]
    if router_id:
        lines.append(f"router id {ipaddress.IPv4Address(router_id)};")
    lines += ["protocol device { scan time 10; }", ""]
    for spec in sorted((s for s in specs if s.present), key=lambda s: str(s.speaker_id)):
        sid = _hex(spec.speaker_id)
        family = f"ipv{spec.ip_version}"
        table = f"t_{sid}"
        lines.append(f"# speaker {spec.speaker_id} revision {spec.revision}")
        lines.append(f"{family} table {table};")
        lines.append(f"protocol static s_{sid} {{")
        lines.append(f"  {family} {{ table {table}; }};")
        for r in spec.routes:
            dest = ipaddress.ip_network(r.destination)
            hop = ipaddress.ip_address(r.next_hop)
            if dest.version != spec.ip_version or hop.version != spec.ip_version:
                continue
            lines.append(f"  route {dest} via {hop};")
        lines.append("}")
        for peer in sorted(spec.peers, key=lambda p: str(p.id)):
            ip = ipaddress.ip_address(peer.peer_ip)
            if ip.version != spec.ip_version:
                continue
            lines.append(f"protocol bgp {protocol_name(spec.speaker_id, peer.id)} {{")
            lines.append(f'  description "speaker {spec.speaker_id} peer {peer.id}";')
            lines.append(f"  local as {spec.local_as};")
            lines.append(f"  neighbor {ip} as {peer.remote_as};")
            if peer.password:
                lines.append(f"  password {_quote(peer.password)};")
            lines.append(f"  connect retry time {timers.connect_retry};")
            lines.append(f"  connect delay time {timers.connect_delay};")
            lines.append(f"  error wait time {timers.error_wait[0]}, {timers.error_wait[1]};")
            lines.append(f"  hold time {timers.hold};")
            lines.append(f"  keepalive time {timers.keepalive};")
            lines.append(f"  {family} {{ table {table}; import none; export all; }};")
            lines.append("}")
        lines.append("")
    return "\n".join(lines) + "\n"
