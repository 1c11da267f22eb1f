"""plan(desired, observed) → the ordered actions that make the kernel match the spec (pure).

Level-triggered: the plan is computed from the whole desired state and the whole observed state
every time, never from "what changed", so a missed event, a restart or a hand-made change all end
in the same place. When the two agree the plan is empty, which is what makes applying the same spec
twice a no-op.

Order matters in three places:

- The nft table goes in before new interfaces come up, so a new port is never unfiltered (an
  interface the rules do not know yet gets no scope mark and cannot leave by a scoped port).
- A veth whose host-side peer is missing or wrong is deleted and created again; deleting either
  end of a veth deletes both, so host-side leftovers are deleted by name first.
- Routes are re-issued (``replace``, idempotent) whenever a link or an address went away, because
  the kernel silently drops routes whose nexthop became unreachable.

With an underlay, each bridge's VXLAN device is part of the bridge's desired state: made with the
bridge, made again if it went missing or was changed, plugged back if it left the bridge.
"""

from __future__ import annotations

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
    ObservedRouter,
    Plan,
    ReplaceNftTable,
    ReplaceRoute,
    RouterState,
    SetLink,
    SetSysctl,
)

LOOPBACK = "lo"


def plan(desired: RouterState | None, observed: ObservedRouter) -> Plan:
    """The steps from ``observed`` to ``desired``; ``desired=None`` removes the router entirely."""
    if desired is None:
        actions = _teardown(observed)
    else:
        actions = _converge(desired, observed)
    return Plan(router_id=observed.router_id, namespace=observed.namespace, actions=tuple(actions))


def _nft_stale(desired: RouterState, observed: ObservedRouter) -> bool:
    seen = observed.nft
    if seen is None or seen.digest != desired.nft.digest or seen.owner != desired.nft.owner:
        return True
    # Same label: trust it only if the rules are exactly what we last saw after applying them.
    return desired.nft_fingerprint is None or seen.fingerprint != desired.nft_fingerprint


def _converge(desired: RouterState, observed: ObservedRouter) -> list[Action]:
    ns = desired.namespace
    out: list[Action] = []
    fresh = not observed.namespace_exists
    want = {v.name: v for v in desired.veths}
    keep: set[str] = set()  # links that exist and stay (possibly with attribute changes)

    if fresh:
        out.append(CreateNamespace(ns, desired.sysctls, desired.nft.text))
    else:
        if _nft_stale(desired, observed):
            out.append(ReplaceNftTable(ns, desired.nft.text))
        out += [SetSysctl(ns, k, v) for k, v in desired.sysctls if observed.sysctls.get(k) != v]
        lo = observed.links.get(LOOPBACK)
        if lo is not None and not lo.up:
            out.append(SetLink(ns, LOOPBACK, up=True))
        for name, link in sorted(observed.links.items()):
            if name == LOOPBACK:
                continue
            v = want.get(name)
            if v is not None and link.kind == "veth" and link.peer is not None and link.peer.name == v.peer:
                keep.add(name)
            else:
                out.append(DeleteLink(ns, name))

    vxlans = {v.bridge: v for v in desired.vxlans}
    for b in desired.bridges:
        bridge, vx = observed.bridges.get(b), vxlans.get(b)
        if bridge is None:
            out.append(EnsureBridge(b, vx))
            continue
        if not bridge.up:
            out.append(SetLink(None, b, up=True))
        if vx is None:
            continue
        seen = observed.vxlans.get(vx.name)
        if seen is None or not seen.matches(vx):
            out.append(EnsureVxlan(vx))
        elif seen.master != b or not seen.up:
            out.append(SetLink(None, vx.name, master=b if seen.master != b else None))

    created: set[str] = set()
    for v in desired.veths:
        if v.name not in keep:
            if v.peer in observed.host_peers:
                out.append(DeleteLink(None, v.peer))  # a leftover whose partner is gone or wrong
            out.append(CreateVeth(ns, v, vxlans.get(v.bridge)))
            created.add(v.name)
            continue
        link = observed.links[v.name]
        if link.mac != v.mac or link.mtu != v.mtu or not link.up:
            out.append(
                SetLink(ns, v.name, mac=v.mac if link.mac != v.mac else None, mtu=v.mtu if link.mtu != v.mtu else None)
            )
        peer = link.peer
        assert peer is not None
        if peer.master != v.bridge or peer.mtu != v.mtu or not peer.up:
            out.append(
                SetLink(
                    None,
                    v.peer,
                    mtu=v.mtu if peer.mtu != v.mtu else None,
                    master=v.bridge if peer.master != v.bridge else None,
                )
            )

    have = {a for a in observed.addresses if a.ifname in keep}
    gone = sorted(have - desired.addresses)
    new = sorted(desired.addresses - have)
    out += [DeleteAddress(ns, a) for a in gone]
    out += [AddAddress(ns, a) for a in new]

    changed = bool(created or gone or any(isinstance(a, DeleteLink) for a in out))
    out += [DeleteRoute(ns, r) for r in sorted(observed.routes - desired.routes)]
    routes = desired.routes if changed else desired.routes - observed.routes
    out += [ReplaceRoute(ns, r) for r in sorted(routes)]

    # Bridges this router just left: removed if nobody else is on them (decided when applied).
    left = {link.peer.master for n, link in observed.links.items() if link.peer and link.peer.master and n not in keep}
    out += [DeleteBridge(b) for b in sorted({b for b in left if b} - set(desired.bridges))]

    # Ports that just appeared (or gained addresses) here: tell the networks where they are now.
    fresh_ports = created | {a.ifname for a in new}
    for v in desired.veths:
        addrs = tuple(sorted(a.cidr.split("/")[0] for a in desired.addresses if a.ifname == v.name))
        if v.name in fresh_ports and addrs:
            out.append(Announce(ns, v.name, v.mac, addrs))
    return out


def _teardown(observed: ObservedRouter) -> list[Action]:
    out: list[Action] = []
    peers = [link.peer for link in observed.links.values() if link.peer is not None]
    if observed.namespace_exists:
        # Deleting the router end removes the host end at once; a namespace's own teardown is
        # asynchronous and would leave the peers on the bridges for a while.
        links = tuple(sorted(n for n in observed.links if n != LOOPBACK))
        if links:
            out.append(DeleteLinks(observed.namespace, links))
        out.append(DeleteNamespace(observed.namespace))
    leftovers = [p for name, p in sorted(observed.host_peers.items()) if name not in {q.name for q in peers}]
    out += [DeleteLink(None, p.name) for p in leftovers]
    bridges = {p.master for p in [*peers, *leftovers] if p.master}
    out += [DeleteBridge(b) for b in sorted(bridges)]
    return out
