"""plan(desired, observed): golden plans for router1, and one test per kind of drift (pure)."""

from __future__ import annotations

import dataclasses

from scopenet.datapath import RouterState, desired_state, names, plan
from scopenet.datapath.example import GW_PORT, NET1_PORT, NET2_PORT, ROUTER1, router1
from scopenet.datapath.model import (
    Address,
    BridgeObs,
    CreateVeth,
    DeleteBridge,
    DeleteLink,
    EnsureBridge,
    EnsureVxlan,
    LinkObs,
    NftObs,
    ObservedRouter,
    PeerObs,
    ReplaceNftTable,
    ReplaceRoute,
    Route,
    SetLink,
    SetSysctl,
    Underlay,
    VxlanObs,
)

RID, NS = str(ROUTER1), names.namespace(ROUTER1)
QR1, QR2, QG = names.internal_ifname(NET1_PORT), names.internal_ifname(NET2_PORT), names.gateway_ifname(GW_PORT)
FP = "f1ng3rpr1nt"


def desired(**kw: object) -> RouterState:
    state = desired_state(router1(**kw), owner="agent-1", nft_fingerprint=FP)  # type: ignore[arg-type]
    assert state is not None
    return state


def in_kernel(state: RouterState) -> ObservedRouter:
    """What the kernel shows once ``state`` has been applied."""
    links = {"lo": LinkObs("lo", "loopback", "00:00:00:00:00:00", 65536, True)}
    for v in state.veths:
        links[v.name] = LinkObs(v.name, "veth", v.mac, v.mtu, True, PeerObs(v.peer, v.bridge, v.mtu, True))
    return ObservedRouter(
        router_id=state.router_id,
        namespace=state.namespace,
        namespace_exists=True,
        links=links,
        addresses=state.addresses,
        routes=state.routes,
        sysctls=dict(state.sysctls),
        nft=NftObs(state.nft.digest, state.nft.owner, FP),
        host_peers={v.peer: links[v.name].peer for v in state.veths},  # type: ignore[misc]
        bridges={b: BridgeObs(up=True) for b in state.bridges},
    )


def with_link(obs: ObservedRouter, name: str, **changes: object) -> ObservedRouter:
    links = dict(obs.links)
    links[name] = dataclasses.replace(links[name], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(obs, links=links)


NOTHING = ObservedRouter(RID, NS, namespace_exists=False)


def test_fresh_router1_golden_plan() -> None:
    assert plan(desired(), NOTHING).describe() == [
        f"create namespace {NS} (6 sysctls, nft table)",
        "ensure bridge brq-1000",
        "ensure bridge brq-1001",
        "ensure bridge brq-1002",
        f"create veth {QR1} <-> tap{str(NET1_PORT)[:11]} on brq-1001 mac fa:16:3e:00:01:01 mtu 1500",
        f"create veth {QR2} <-> tap{str(NET2_PORT)[:11]} on brq-1002 mac fa:16:3e:00:02:01 mtu 1500",
        f"create veth {QG} <-> tap{str(GW_PORT)[:11]} on brq-1000 mac fa:16:3e:00:00:66 mtu 1500",
        f"add address 2001:db8::66/64 dev {QG}",
        f"add address 203.0.113.66/26 dev {QG}",
        f"add address 203.0.113.80/32 dev {QG}",
        f"add address 198.51.100.1/26 dev {QR1}",
        f"add address 2001:db8:80d2:c4d3::1/64 dev {QR1}",
        f"add address 2001:db8:a583::1/64 dev {QR2}",
        f"add address 203.0.113.1/26 dev {QR2}",
        "replace route 0.0.0.0/0 via 203.0.113.65",
        "replace route ::/0 via 2001:db8::65",
        # Every port that appears tells its networks it is here (a router moved from another host
        # keeps its MACs, so switches and VXLAN must learn the new location).
        "announce 198.51.100.1 2001:db8:80d2:c4d3::1 on qr-1a2b3c4d-5e",
        "announce 2001:db8:a583::1 203.0.113.1 on qr-2b3c4d5e-6f",
        "announce 2001:db8::66 203.0.113.66 203.0.113.80 on qg-9e3c1d2a-7b",
    ]


def test_nothing_to_do_when_the_kernel_matches() -> None:
    state = desired()
    assert not plan(state, in_kernel(state))
    assert plan(state, in_kernel(state)).describe() == []


def test_table_replaced_when_label_or_rules_differ() -> None:
    state = desired()
    obs = in_kernel(state)
    assert plan(state, dataclasses.replace(obs, nft=None)).actions == (ReplaceNftTable(NS, state.nft.text),)
    changed = desired(network2_scoped=False)  # the pool left the scope: only the table changes
    assert plan(changed, obs).actions == (ReplaceNftTable(NS, changed.nft.text),)
    tampered = dataclasses.replace(obs, nft=NftObs(state.nft.digest, "agent-1", "other"))
    assert plan(state, tampered).describe() == ["replace nft table"]
    unknown = dataclasses.replace(state, nft_fingerprint=None)  # after a restart: re-assert once
    assert plan(unknown, obs).describe() == ["replace nft table"]
    stolen = dataclasses.replace(obs, nft=NftObs(state.nft.digest, "agent-2", FP))
    assert plan(state, stolen).describe() == ["replace nft table"]


def test_link_attributes_are_set_not_recreated() -> None:
    state = desired()
    obs = with_link(in_kernel(state), QR1, up=False, mac="fa:16:3e:ff:ff:ff")
    obs = with_link(obs, QG, peer=PeerObs(f"tap{str(GW_PORT)[:11]}", "brq-9", 1500, True))
    obs = dataclasses.replace(obs, sysctls=dict(state.sysctls) | {"net/ipv4/ip_forward": "0"})
    assert plan(state, obs).actions == (
        SetSysctl(NS, "net/ipv4/ip_forward", "1"),
        SetLink(NS, QR1, mac="fa:16:3e:00:01:01"),
        SetLink(None, f"tap{str(GW_PORT)[:11]}", master="brq-1000"),
    )


def test_deleted_interface_is_recreated_with_its_addresses_and_routes() -> None:
    state = desired()
    obs = in_kernel(state)
    links = {k: v for k, v in obs.links.items() if k != QG}
    obs = dataclasses.replace(
        obs,
        links=links,
        addresses=frozenset(a for a in obs.addresses if a.ifname != QG),
        routes=frozenset(),
        host_peers={},
    )
    assert plan(state, obs).describe() == [
        f"create veth {QG} <-> tap{str(GW_PORT)[:11]} on brq-1000 mac fa:16:3e:00:00:66 mtu 1500",
        f"add address 2001:db8::66/64 dev {QG}",
        f"add address 203.0.113.66/26 dev {QG}",
        f"add address 203.0.113.80/32 dev {QG}",
        "replace route 0.0.0.0/0 via 203.0.113.65",
        "replace route ::/0 via 2001:db8::65",
        f"announce 2001:db8::66 203.0.113.66 203.0.113.80 on {QG}",
    ]


def test_deleted_namespace_clears_lingering_host_peers_first() -> None:
    state = desired()
    lingering = dataclasses.replace(NOTHING, host_peers=in_kernel(state).host_peers)
    actions = plan(state, lingering).actions
    peer = f"tap{str(GW_PORT)[:11]}"
    assert actions.index(DeleteLink(None, peer)) < next(
        i
        for i, a in enumerate(actions)
        if getattr(a, "veth", None) and a.veth.peer == peer  # type: ignore[attr-defined]
    )


def test_interface_removed_from_the_spec_and_its_bridge() -> None:
    state = desired()
    obs = in_kernel(state)
    smaller = dataclasses.replace(
        state,
        veths=tuple(v for v in state.veths if v.name != QR1),
        addresses=frozenset(a for a in state.addresses if a.ifname != QR1),
    )
    assert plan(smaller, obs).describe() == [
        f"delete link {QR1} (router)",
        "replace route 0.0.0.0/0 via 203.0.113.65",
        "replace route ::/0 via 2001:db8::65",
        "delete bridge brq-1001 if empty",
    ]


def test_extra_address_and_route_are_removed() -> None:
    state = desired()
    obs = in_kernel(state)
    obs = dataclasses.replace(
        obs,
        addresses=obs.addresses | {Address(QR1, "198.51.100.9/26")},
        routes=obs.routes | {Route("10.0.0.0/8", "198.51.100.9")},
    )
    assert plan(state, obs).describe() == [
        f"delete address 198.51.100.9/26 dev {QR1}",
        "delete route 10.0.0.0/8 via 198.51.100.9",
        "replace route 0.0.0.0/0 via 203.0.113.65",
        "replace route ::/0 via 2001:db8::65",
    ]
    missing_route = dataclasses.replace(in_kernel(state), routes=frozenset({Route("::/0", "2001:db8::65")}))
    assert plan(state, missing_route).actions == (ReplaceRoute(NS, Route("0.0.0.0/0", "203.0.113.65")),)


def test_adding_a_floating_ip_is_the_table_and_one_address() -> None:
    before, after = desired(floating_ip=False), desired(floating_ip=True)
    assert plan(after, in_kernel(before)).describe() == [
        "replace nft table",
        f"add address 203.0.113.80/32 dev {QG}",
        f"announce 2001:db8::66 203.0.113.66 203.0.113.80 on {QG}",
    ]


def test_teardown_removes_links_namespace_and_bridges() -> None:
    obs = in_kernel(desired())
    assert plan(None, obs).describe() == [
        f"delete links {QG} {QR1} {QR2}",
        f"delete namespace {NS}",
        "delete bridge brq-1000 if empty",
        "delete bridge brq-1001 if empty",
        "delete bridge brq-1002 if empty",
    ]
    assert not plan(None, NOTHING)
    leftovers = dataclasses.replace(NOTHING, host_peers={"tapx": PeerObs("tapx", "brq-7", 1500, True)})
    assert plan(None, leftovers).actions == (DeleteLink(None, "tapx"), DeleteBridge("brq-7"))


# -- VXLAN: every bridge of a host with an underlay also has its network's VXLAN device ------------

UNDERLAY = Underlay(local_ip="10.250.0.1", group="239.1.1.1")


def spanning(**kw: object) -> RouterState:
    state = desired_state(router1(**kw), owner="agent-1", nft_fingerprint=FP, underlay=UNDERLAY)  # type: ignore[arg-type]
    assert state is not None
    return state


def with_vxlans(state: RouterState, obs: ObservedRouter) -> ObservedRouter:
    made = {v.name: VxlanObs("vxlan", v.vni, v.local_ip, v.group, v.port, True, v.bridge, True) for v in state.vxlans}
    return dataclasses.replace(obs, vxlans=made)


def test_a_vxlan_device_per_network_with_vni_the_segmentation_id() -> None:
    state = spanning()
    assert [(v.name, v.bridge, v.vni) for v in state.vxlans] == [
        ("vxlan-1000", "brq-1000", 1000),
        ("vxlan-1001", "brq-1001", 1001),
        ("vxlan-1002", "brq-1002", 1002),
    ]
    assert {(v.local_ip, v.group, v.port) for v in state.vxlans} == {("10.250.0.1", "239.1.1.1", 4789)}
    assert desired().vxlans == ()  # no underlay: one host, bridges only


def test_fresh_router_makes_each_bridge_with_its_vxlan_device() -> None:
    state = spanning()
    lines = plan(state, NOTHING).describe()
    assert [line for line in lines if "bridge" in line and "veth" not in line] == [
        f"ensure bridge brq-{seg} with vxlan-{seg} (vni {seg}, local 10.250.0.1, group 239.1.1.1, dstport 4789)"
        for seg in (1000, 1001, 1002)
    ]
    # Creating a port remakes a bridge that vanished meanwhile: with its device, not without.
    created = [a for a in plan(state, NOTHING).actions if isinstance(a, CreateVeth)]
    assert {a.veth.bridge: a.vxlan.name for a in created if a.vxlan} == {
        "brq-1000": "vxlan-1000",
        "brq-1001": "vxlan-1001",
        "brq-1002": "vxlan-1002",
    }


def test_nothing_to_do_when_the_vxlan_devices_match() -> None:
    state = spanning()
    assert not plan(state, with_vxlans(state, in_kernel(state)))


def test_missing_or_changed_vxlan_device_is_made_again() -> None:
    state = spanning()
    obs = with_vxlans(state, in_kernel(state))
    v1001 = next(v for v in state.vxlans if v.vni == 1001)
    gone = dataclasses.replace(obs, vxlans={k: v for k, v in obs.vxlans.items() if k != "vxlan-1001"})
    assert plan(state, gone).actions == (EnsureVxlan(v1001),)
    for change in ({"vni": 7}, {"group": "239.9.9.9"}, {"local_ip": "10.250.0.9"}, {"port": 8472}, {"learning": False}):
        changed = dict(obs.vxlans) | {"vxlan-1001": dataclasses.replace(obs.vxlans["vxlan-1001"], **change)}
        assert plan(state, dataclasses.replace(obs, vxlans=changed)).actions == (EnsureVxlan(v1001),), change
    not_vxlan = dict(obs.vxlans) | {"vxlan-1001": VxlanObs("veth", None, None, None, None, False, "brq-1001", True)}
    assert plan(state, dataclasses.replace(obs, vxlans=not_vxlan)).actions == (EnsureVxlan(v1001),)


def test_unplugged_or_down_vxlan_device_is_plugged_back() -> None:
    state = spanning()
    obs = with_vxlans(state, in_kernel(state))
    loose = dict(obs.vxlans) | {"vxlan-1000": dataclasses.replace(obs.vxlans["vxlan-1000"], master=None)}
    down = dict(obs.vxlans) | {"vxlan-1002": dataclasses.replace(obs.vxlans["vxlan-1002"], up=False)}
    assert plan(state, dataclasses.replace(obs, vxlans=loose)).actions == (
        SetLink(None, "vxlan-1000", master="brq-1000"),
    )
    assert plan(state, dataclasses.replace(obs, vxlans=down)).actions == (SetLink(None, "vxlan-1002"),)


def test_a_missing_bridge_comes_back_with_its_device_in_one_step() -> None:
    state = spanning()
    obs = with_vxlans(state, in_kernel(state))
    obs = dataclasses.replace(
        obs,
        bridges={k: v for k, v in obs.bridges.items() if k != "brq-1002"},
        vxlans={k: v for k, v in obs.vxlans.items() if k != "vxlan-1002"},
    )
    v1002 = next(v for v in state.vxlans if v.vni == 1002)
    assert plan(state, obs).actions == (EnsureBridge("brq-1002", v1002),)


def test_leaving_a_network_and_teardown_are_the_same_with_an_underlay() -> None:
    """The device is no port of anyone's: the adapter removes it with the bridge it leaves empty."""
    state = spanning()
    obs = with_vxlans(state, in_kernel(state))
    assert plan(None, obs).describe() == plan(None, in_kernel(desired())).describe()
