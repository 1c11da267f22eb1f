"""Render one router's nftables table from its RouterSpec (pure), and read a listing back.

The rules reproduce Neutron's legacy L3 agent (``router_info.py``, docs/neutron.md#router-datapath) as a
ruleset first built by hand and verified on a real kernel, in its chain and rule order (docs/datapath.md).
In short: a packet gets the scope mark of its ingress interface (upper 16 bits), a connection keeps
its originating scope in the connmark, a packet may leave an interface only with that interface's
scope, and IPv4 leaving through the gateway is SNATed unless its scope is the external network's.

Differences from that verified ruleset, all additive: each scope-filter drop counts into a
named counter ``drop_<ifname>`` (so a test or a metric can read "blocked" per interface), the DNAT
and hairpin SNAT rules count too (the reachability explainer shows the counter of the rule that
decides), and a never-jumped chain carries a comment ``scopenet owner=<agent> digest=<hash>`` so the agent can tell
its own tables (and their version) from anything else after a restart.

The table is replaced in one transaction (``table …{}`` + ``delete table`` + the new table), so no
packet ever sees a half-built ruleset.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

from scopenet.contracts.routerspec import FloatingIp, PortForwarding, RouterPort, RouterSpec, Scope
from scopenet.datapath import names
from scopenet.datapath.model import NftObs, NftTable

COMMENT_PREFIX = "scopenet "
META_CHAIN = "scopenet_meta"


def _hex(value: int) -> str:
    return f"0x{value:08x}"


def _set_scope(mark: int) -> str:
    """``meta mark`` upper 16 bits := mark, lower 16 kept (iptables ``--set-xmark M/0xffff0000``).

    Written the way nft prints it back (``& (keep|mark) | mark``), so the listing matches the input.
    """
    return f"meta mark set meta mark & {_hex(mark | names.LOW_MASK)} | {_hex(mark)}"


def _families(port: RouterPort) -> list[int]:
    found = {ipaddress.ip_address(a.ip_address).version for a in port.addresses}
    return sorted(found)


def _scope(port: RouterPort, family: int) -> Scope:
    return port.scope_v4 if family == 4 else port.scope_v6


def _per_family(port: RouterPort, families: Iterable[int], template: str) -> list[str]:
    """One rule per family; a single one without ``meta nfproto`` when both families share the mark.

    ``template`` has ``{nfproto}``, ``{set_mark}`` (set the scope mark) and ``{mark}`` (hex).
    """
    fams = list(families)
    marks = {f: names.scope_mark(_scope(port, f)) for f in fams}

    def rule(nfproto: str, mark: int) -> str:
        return template.format(nfproto=nfproto, set_mark=_set_scope(mark), mark=_hex(mark))

    if fams == [4, 6] and marks[4] == marks[6]:
        return [rule("", marks[4])]
    return [rule(f"meta nfproto ipv{f} ", marks[f]) for f in fams]


def counter_name(ifname: str) -> str:
    """The named counter of the scope-filter drops of packets leaving ``ifname``."""
    return f"drop_{ifname}"


def _gateway_v4(spec: RouterSpec) -> str | None:
    if spec.gateway is None:
        return None
    for a in spec.gateway.addresses:
        if ipaddress.ip_address(a.ip_address).version == 4:
            return str(a.ip_address)
    return None


def _scoped_fips(spec: RouterSpec, ext_mark: int) -> list[FloatingIp]:
    """FIPs whose fixed address is in another scope than the gateway's (they need mark rules)."""
    return [f for f in spec.floating_ips if names.scope_mark(f.fixed_scope) != ext_mark]


def _scoped_pfs(spec: RouterSpec, ext_mark: int) -> list[PortForwarding]:
    """Port forwardings to an address in another scope than the gateway's (they need mark rules)."""
    return [p for p in spec.port_forwardings if names.scope_mark(p.internal_scope) != ext_mark]


def _ports(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _pf_match(p: PortForwarding) -> str:
    """The packets a forwarding takes: its protocol to its external ports of the floating address."""
    dport = _ports(p.external_port_start, p.external_port_end)
    return f"ip daddr {p.floating_ip_address} meta l4proto {p.protocol} th dport {dport}"


def _pf_dnat(p: PortForwarding) -> str:
    """DNAT to the internal address: the same ports, one port for all (N to 1), or the range
    shifted port by port (N to N; nft has no port offset, so a map says it)."""
    to = p.internal_ip_address
    if p.internal_port_start == p.internal_port_end:
        return f"{_pf_match(p)} counter dnat ip to {to}:{p.internal_port_start}"
    if p.internal_port_start == p.external_port_start:
        return f"{_pf_match(p)} counter dnat ip to {to}"
    shift = p.internal_port_start - p.external_port_start
    pairs = ", ".join(f"{e} : {e + shift}" for e in range(p.external_port_start, p.external_port_end + 1))
    return f"{_pf_match(p)} counter dnat ip to {to} : th dport map {{ {pairs} }}"


def _pf_reply(p: PortForwarding) -> str:
    """The replies of a forwarded connection, as they leave the internal address (before un-DNAT)."""
    sport = _ports(p.internal_port_start, p.internal_port_end)
    return (
        f"ip saddr {p.internal_ip_address} meta l4proto {p.protocol} th sport {sport} ct direction reply ct status dnat"
    )


def _block(name: str, header: str | None, rules: list[str]) -> list[str]:
    out = [f"  chain {name} {{" + (f" {header}" if header else "")]
    out += [f"    {r}" for r in rules]
    out.append("  }")
    return out


def render_rules(spec: RouterSpec) -> str:
    """The body of the router's table (chains and counters), deterministic for a given spec."""
    devices: list[tuple[str, RouterPort]] = [(names.internal_ifname(p.port_id), p) for p in spec.interfaces]
    gw = spec.gateway
    qg = names.gateway_ifname(gw.port_id) if gw else None
    if gw is not None and qg is not None:
        devices.append((qg, gw))
    gw_v4 = _gateway_v4(spec)
    ext_mark = names.scope_mark(gw.scope_v4 if gw else None)
    snat = gw is not None and gw.enable_snat and gw_v4 is not None

    scope_mark: list[str] = []
    scope_filter: list[str] = []
    counters: list[str] = []
    for dev, port in devices:
        fams = _families(port)
        scope_mark += _per_family(port, fams, '{nfproto}iifname "' + dev + '" {set_mark}')
        # IPv4 may leave by the gateway in any scope while SNAT is on: it is NATed unless in scope.
        filtered = [f for f in fams if not (dev == qg and f == 4 and snat)]
        if filtered:
            cname = counter_name(dev)
            counters.append(cname)
            template = '{nfproto}oifname "' + dev + '" meta mark != {mark}/16 counter name "' + cname + '" drop'
            scope_filter += _per_family(port, filtered, template)

    fips = _scoped_fips(spec, ext_mark) if gw else []
    floatingip = [f"ip daddr {f.floating_ip_address} {_set_scope(names.scope_mark(f.fixed_scope))}" for f in fips]
    mangle_forward = [f"ip saddr {f.fixed_ip_address} jump float_snat_mangle" for f in fips]
    # Port forwardings follow the floating IPs' scope rules, for their protocol and ports only: the
    # forwarded packets take the internal address's scope, their replies the external one's.
    pfs = _scoped_pfs(spec, ext_mark) if gw else []
    floatingip += [f"{_pf_match(p)} {_set_scope(names.scope_mark(p.internal_scope))}" for p in pfs]
    mangle_forward += [f"{_pf_reply(p)} jump float_snat_mangle" for p in pfs]
    float_snat_mangle = [f"ct mark {_hex(0)}/16 ct mark set meta mark & {_hex(names.SCOPE_MASK)}"]
    if fips or pfs:
        for dev, port in devices:
            if 4 in _families(port) and names.scope_mark(port.scope_v4) == ext_mark:
                float_snat_mangle.append(f'oifname "{dev}" {_set_scope(ext_mark)}')

    low = names.EXTERNAL_INGRESS_MARK
    ext_ingress = (
        [f'meta nfproto ipv4 iifname "{qg}" meta mark set meta mark & {_hex(names.SCOPE_MASK | low)} | {_hex(low)}']
        if qg
        else []
    )
    mangle_post = (
        [f'meta nfproto ipv4 oifname "{qg}" ct mark {_hex(0)}/16 ct mark set meta mark & {_hex(names.SCOPE_MASK)}']
        if snat
        else []
    )

    nat_pre: list[str] = []
    nat_post: list[str] = []
    l3_snat: list[str] = []
    float_snat: list[str] = []
    if gw is not None and gw_v4 is not None:
        nat_pre = [
            f"ip daddr {f.floating_ip_address} counter dnat ip to {f.fixed_ip_address}" for f in spec.floating_ips
        ]
        nat_pre += [_pf_dnat(p) for p in spec.port_forwardings]
        float_snat = [
            f"ip saddr {f.fixed_ip_address} counter snat ip to {f.floating_ip_address}" for f in spec.floating_ips
        ]
        nat_post = [
            f'meta nfproto ipv4 iifname != "{qg}" oifname != "{qg}" ct status & dnat == 0 counter accept',
            "meta nfproto ipv4 jump l3_snat",
        ]
        l3_snat = ["jump float_snat"]
        if snat and gw.scope_v4.id is not None:
            l3_snat.append(f'oifname "{qg}" ct mark {_hex(ext_mark)}/16 counter accept')
        if snat:
            l3_snat.append(f'oifname "{qg}" counter snat ip to {gw_v4}')
        l3_snat.append(f"meta mark & {_hex(names.LOW_MASK)} != {_hex(low)} ct status dnat counter snat ip to {gw_v4}")

    prerouting = ["jump scope_mark", f"ct mark != {_hex(0)}/16 meta mark set ct mark", "jump ext_ingress_mark"]
    prerouting.append("meta nfproto ipv4 jump floatingip")
    lines = [f"  counter {c} {{ }}" for c in counters]
    lines += _block("mangle_prerouting", "type filter hook prerouting priority mangle; policy accept;", prerouting)
    lines += _block("ext_ingress_mark", None, ext_ingress)
    lines += _block("scope_mark", None, scope_mark)
    lines += _block("floatingip", None, floatingip)
    lines += _block("mangle_forward", "type filter hook forward priority mangle; policy accept;", mangle_forward)
    lines += _block("float_snat_mangle", None, float_snat_mangle)
    lines += _block("mangle_postrouting", "type filter hook postrouting priority mangle; policy accept;", mangle_post)
    lines += _block("filter_forward", "type filter hook forward priority filter; policy accept;", ["jump scope_filter"])
    lines += _block("scope_filter", None, scope_filter)
    lines += _block("nat_prerouting", "type nat hook prerouting priority dstnat; policy accept;", nat_pre)
    lines += _block("nat_output", "type nat hook output priority -100; policy accept;", nat_pre)
    lines += _block("nat_postrouting", "type nat hook postrouting priority srcnat; policy accept;", nat_post)
    lines += _block("l3_snat", None, l3_snat)
    lines += _block("float_snat", None, float_snat)
    return "\n".join(lines) + "\n"


def digest_of(rules: str) -> str:
    return hashlib.sha256(rules.encode()).hexdigest()[:16]


def render(spec: RouterSpec, *, owner: str) -> NftTable:
    """The atomic replace transaction for the router's table, labelled with owner and digest."""
    rules = render_rules(spec)
    digest = digest_of(rules)
    t = f"inet {names.TABLE}"
    label = f"{COMMENT_PREFIX}owner={owner} digest={digest}"
    text = (
        f"table {t} {{}}\ndelete table {t}\ntable {t} {{\n"
        f'  chain {META_CHAIN} {{\n    accept comment "{label}"\n  }}\n'
        f"{rules}}}\n"
    )
    return NftTable(text=text, digest=digest, owner=owner)


# -- reading back ----------------------------------------------------------------------------------


def _strip(obj: Any) -> Any:
    """A listing without what changes by itself: handles and counter values."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if k in {"handle", "packets", "bytes"}:
                continue
            if k == "counter" and isinstance(v, dict) and "name" not in v:
                out[k] = None  # an anonymous per-rule counter: keep that it exists, not its values
                continue
            out[k] = _strip(v)
        return out
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def parse_listing(listing: Mapping[str, Any]) -> NftObs | None:
    """Owner, digest and fingerprint of a ``nft -j list table`` answer (None: no such table)."""
    items = [i for i in listing.get("nftables", []) if "metainfo" not in i]
    if not any("table" in i for i in items):
        return None
    owner = digest = None
    for item in items:
        rule = item.get("rule")
        if rule and rule.get("chain") == META_CHAIN and str(rule.get("comment", "")).startswith(COMMENT_PREFIX):
            fields = dict(kv.split("=", 1) for kv in rule["comment"][len(COMMENT_PREFIX) :].split() if "=" in kv)
            owner, digest = fields.get("owner"), fields.get("digest")
    blob = json.dumps(_strip(items), sort_keys=True, separators=(",", ":"))
    return NftObs(digest=digest, owner=owner, fingerprint=hashlib.sha256(blob.encode()).hexdigest()[:16])


def counters(listing: Mapping[str, Any]) -> dict[str, int]:
    """Packets per named counter in a ``nft -j list table`` (or ``list counters``) answer."""
    out: dict[str, int] = {}
    for item in listing.get("nftables", []):
        c = item.get("counter")
        if isinstance(c, dict) and "name" in c:
            out[c["name"]] = int(c.get("packets", 0))
    return out
