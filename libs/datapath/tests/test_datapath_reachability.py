"""The explainer's verdicts on the seed's router1 agree with docs/datapath.md#expected-connectivity
(the table tests/netns/test_datapath_matrix.py proves with packets)."""

from __future__ import annotations

import uuid

import pytest

from scopenet.contracts.routerspec import RouterSpec
from scopenet.datapath import example as ex
from scopenet.datapath import reachability as rc

EXT_NET = uuid.uuid5(uuid.NAMESPACE_URL, "ext")
NET1 = uuid.uuid5(uuid.NAMESPACE_URL, "network1")
NET2 = uuid.uuid5(uuid.NAMESPACE_URL, "network2")
POOL4, POOL6 = uuid.UUID(int=41), uuid.UUID(int=61)


def model(spec: RouterSpec, *, inst1_up: bool = True) -> rc.Model:
    subnets = []
    for p in (spec.gateway, *spec.interfaces):
        for a in p.addresses if p is not None else ():
            scoped = p.network_id == NET2  # type: ignore[union-attr]
            pool = (POOL4 if ":" not in a.cidr else POOL6) if scoped else None
            subnets.append(rc.Subnet(a.subnet_id, p.network_id, a.cidr, a.gateway_ip, pool, f"subnet-{a.cidr}"))
    return rc.Model(
        routers=[rc.Router(spec, "router1")],
        networks={
            EXT_NET: rc.Network(EXT_NET, "public", external=True),
            NET1: rc.Network(NET1, "network1"),
            NET2: rc.Network(NET2, "network2"),
        },
        subnets=subnets,
        pools={
            POOL4: rc.Pool(POOL4, "subnet-pool-ip4", 4, ex.SCOPE_A.id),
            POOL6: rc.Pool(POOL6, "subnet-pool-ip6", 6, ex.SCOPE_A6.id),
        },
        scopes={ex.SCOPE_A.id: "address-scope-ip4", ex.SCOPE_A6.id: "address-scope-ip6"},  # type: ignore[dict-item]
        ports=[
            rc.Port(ex.INST1_PORT, NET1, ("198.51.100.3", "2001:db8:80d2:c4d3::3"), "instance1", inst1_up),
            rc.Port(ex.INST2_PORT, NET2, ("203.0.113.3", "2001:db8:a583::3"), "instance2"),
        ],
    )


def run(m: rc.Model, src: str, dst: str, **kw: object) -> rc.Explanation:
    return rc.explain(m, rc.resolve(m, src), rc.resolve(m, dst), **kw)  # type: ignore[arg-type]


I1, I2 = str(ex.INST1_PORT), str(ex.INST2_PORT)
EXT4, EXT6 = "198.18.0.1", "2001:db8:ffff::1"  # the world beyond the external network


@pytest.mark.parametrize(
    ("floating", "src", "dst", "verdict", "translated_source", "codes"),
    [
        (False, EXT4, "203.0.113.3", "routed", None, []),
        (False, EXT4, "198.51.100.3", "dropped", None, ["SCOPE_MISMATCH"]),
        (False, "198.51.100.3", EXT4, "snat", "203.0.113.66", []),
        (False, "203.0.113.3", EXT4, "routed", None, []),
        (False, I1, I2, "dropped", None, ["SCOPE_MISMATCH"]),
        (False, I2, I1, "dropped", None, ["SCOPE_MISMATCH"]),
        (False, "2001:db8:80d2:c4d3::3", "2001:db8:a583::3", "dropped", None, ["SCOPE_MISMATCH"]),
        (False, EXT6, "2001:db8:a583::3", "routed", None, []),
        (False, "2001:db8:a583::3", EXT6, "routed", None, []),
        (False, EXT6, "2001:db8:80d2:c4d3::3", "dropped", None, ["SCOPE_MISMATCH"]),
        (False, "2001:db8:80d2:c4d3::3", EXT6, "dropped", None, ["UNSCOPED_NO_NAT66"]),
        (True, EXT4, ex.FLOATING_IP, "dnat", None, []),
        (True, "198.51.100.3", EXT4, "snat", ex.FLOATING_IP, []),
        (True, EXT4, "198.51.100.3", "dropped", None, ["SCOPE_MISMATCH"]),
        (True, "203.0.113.3", ex.FLOATING_IP, "dnat", "203.0.113.66", []),
        (False, "203.0.113.100", "203.0.113.3", "routed", None, []),  # a host on the external network
        (True, "203.0.113.100", ex.FLOATING_IP, "dnat", None, []),  # its floating IP is the router's
    ],
)
def test_seed_matrix(
    floating: bool, src: str, dst: str, verdict: str, translated_source: str | None, codes: list[str]
) -> None:
    x = run(model(ex.router1(floating_ip=floating)), src, dst)
    assert (x.verdict, x.translated_source) == (verdict, translated_source), x
    assert [r.code for r in x.reasons if r.blocking] == codes


def test_dnat_translates_and_names_the_rule() -> None:
    x = run(model(ex.router1()), EXT4, ex.FLOATING_IP)
    assert x.translated_destination == "198.51.100.3"
    assert x.decision is not None and x.decision.chain == "nat_prerouting"
    assert [h.kind for h in x.hops] == ["external", "router", "network", "port"]
    assert x.hops[-1].name == "instance1"


def test_drop_names_counter_and_fix() -> None:
    x = run(model(ex.router1(floating_ip=False)), I1, I2)
    assert x.decision is not None
    assert (x.decision.chain, x.decision.counter, x.decision.outcome) == (
        "scope_filter",
        "drop_qr-2b3c4d5e-6f",
        "drop",
    )
    assert any("subnet-pool-ip4" in f and "out of its address scope" in f for f in x.fix)
    assert any("onboard subnet" in f and "address-scope-ip4" in f for f in x.fix)
    world = run(model(ex.router1(floating_ip=False)), EXT4, "198.51.100.3")
    assert any("associate a floating IP with port instance1" in f for f in world.fix)


def test_scope_flip_opens_and_closes() -> None:
    """subnet-pool-ip4 leaves scope A: instance2 is SNATed outbound, and unreachable from outside."""
    m = model(ex.router1(network2_scoped=False, floating_ip=False))
    assert run(m, "203.0.113.3", EXT4).verdict == "snat"
    assert run(m, EXT4, "203.0.113.3").verdict == "dropped"
    assert run(m, I1, I2).verdict == "routed"  # both unscoped now


def test_snat_disabled_collects_every_reason() -> None:
    m = model(ex.router1(enable_snat=False, floating_ip=False), inst1_up=False)
    x = run(m, I1, EXT4)
    assert x.verdict == "dropped"
    assert {r.code for r in x.reasons} == {"PORT_DOWN", "SNAT_DISABLED"}
    assert any("--enable-snat" in f for f in x.fix)
    assert run(m, "203.0.113.3", EXT4).verdict == "routed"


def test_router_down_and_no_gateway() -> None:
    down = model(ex.router1(floating_ip=False).model_copy(update={"admin_state_up": False}))
    x = run(down, I1, EXT4)
    assert x.verdict == "no_route" and "ROUTER_DOWN" in {r.code for r in x.reasons}
    nogw = model(ex.router1(floating_ip=False).model_copy(update={"gateway": None}))
    assert {r.code for r in run(nogw, I2, EXT4).reasons} == {"NO_EXTERNAL_GATEWAY"}
    assert {r.code for r in run(nogw, EXT4, "203.0.113.3").reasons} == {"NO_EXTERNAL_GATEWAY"}


def test_same_network_and_unknowns() -> None:
    m = model(ex.router1())
    x = run(m, I1, "198.51.100.9")
    assert x.verdict == "routed" and x.reasons[0].code == "SAME_NETWORK"
    with pytest.raises(rc.UnknownEndpoint):
        rc.resolve(m, str(uuid.uuid4()))
    with pytest.raises(rc.UnknownEndpoint):
        rc.resolve(m, "not-an-ip")


def test_edge_verdict() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert rc.edge_verdict(family=4, ingress_scope=a, egress_scope=a) == "routed"
    assert rc.edge_verdict(family=4, ingress_scope=a, egress_scope=b) == "dropped"
    assert rc.edge_verdict(family=4, ingress_scope=None, egress="gateway", external_scope=a) == "snat"
    assert rc.edge_verdict(family=4, ingress_scope=a, egress="gateway", external_scope=a) == "routed"
    assert rc.edge_verdict(family=6, ingress_scope=None, egress="gateway", external_scope=a) == "dropped"


def test_not_announced_is_a_note_only_when_bgp_is_modelled() -> None:
    base = model(ex.router1(floating_ip=False))
    with_bgp = rc.Model(base.routers, base.networks, base.subnets, base.pools, base.scopes, base.ports, frozenset())
    x = run(with_bgp, EXT4, "203.0.113.3")
    assert x.verdict == "routed" and [(r.code, r.blocking) for r in x.reasons] == [("NOT_ANNOUNCED", False)]
    announced = rc.Model(
        base.routers, base.networks, base.subnets, base.pools, base.scopes, base.ports, frozenset({"203.0.113.0/26"})
    )
    assert run(announced, EXT4, "203.0.113.3").reasons == ()
    assert run(base, EXT4, "203.0.113.3").reasons == ()


def test_evidence_finds_the_rule_and_its_counters() -> None:
    """The rendered rule's position in its chain picks the kernel's rule (handle, counter)."""
    from scopenet.datapath import evidence, nft

    spec = ex.router1(floating_ip=False)
    text = nft.render_rules(spec)
    x = run(model(spec), I1, "203.0.113.3")
    d = x.decision
    assert d is not None and d.counter == "drop_qr-2b3c4d5e-6f"
    listing = {
        "nftables": [
            {"counter": {"family": "inet", "name": "drop_qr-2b3c4d5e-6f", "packets": 7, "bytes": 588}},
            *(
                {"rule": {"chain": "scope_filter", "handle": 10 + i, "expr": []}}
                for i in range(len(evidence.chains(text)["scope_filter"]))
            ),
            {"rule": {"chain": "l3_snat", "handle": 40, "expr": []}},
            {"rule": {"chain": "l3_snat", "handle": 41, "expr": [{"counter": {"packets": 9, "bytes": 1}}]}},
            {"rule": {"chain": "l3_snat", "handle": 42, "expr": [{"counter": {"packets": 3, "bytes": 1}}]}},
        ]
    }
    found = evidence.find(text, listing, chain=d.chain, contains=d.contains, excludes=d.excludes, counter=d.counter)
    assert found is not None and 'oifname "qr-2b3c4d5e-6f"' in found.rule and "ipv6" not in found.rule
    assert (found.handle, found.packets) == (11, 7)
    snat = run(model(ex.router1()), I1, EXT4).decision
    assert snat is not None and snat.chain == "float_snat"
    gw = run(model(spec), I1, EXT4).decision
    assert gw is not None and gw.chain == "l3_snat"
    found = evidence.find(text, listing, chain=gw.chain, contains=gw.contains)
    assert found is not None and found.rule.endswith("snat ip to 203.0.113.66") and found.packets == 3
    assert evidence.find(text, listing, chain="scope_filter", contains=("no such rule",)) is None
