"""Golden tests of port forwardings in a router's table (pure; tests/netns runs them on a kernel).

router1 with a floating IP that forwards some ports: to instance1 (unscoped, across scopes from the
external network), a shifted range to it, and one to instance2 (scope A, the external network's).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts.routerspec import PortForwarding, RouterSpec
from scopenet.datapath import desired_state, names, nft
from scopenet.datapath.example import GW_PORT, PF_FIP, SCOPE_A, port_forwarding, router1

QG = names.gateway_ifname(GW_PORT)


FORWARDINGS = [
    port_forwarding(1, "tcp", (8080, 8080), "198.51.100.3", (80, 80)),
    port_forwarding(2, "udp", (5353, 5355), "198.51.100.3", (6353, 6355)),
    port_forwarding(3, "sctp", (9000, 9009), "198.51.100.3", (9000, 9009)),
    port_forwarding(4, "tcp", (2000, 2009), "198.51.100.3", (22, 22)),
    port_forwarding(5, "tcp", (2222, 2222), "203.0.113.3", (22, 22), internal_scope=SCOPE_A),
]


def spec(forwardings: list[PortForwarding] = FORWARDINGS, **kw: object) -> RouterSpec:
    return router1(floating_ip=False, **kw).model_copy(update={"port_forwardings": forwardings})  # type: ignore[arg-type]


def chain(rules: str, name: str) -> list[str]:
    body = re.search(rf"  chain {name} {{[^\n]*\n(.*?)  }}", rules, re.S)
    assert body is not None, name
    return [line.strip() for line in body.group(1).splitlines() if line.strip()]


def test_forwarded_packets_are_dnated_with_their_ports() -> None:
    rules = nft.render_rules(spec())
    expected = [
        "ip daddr 203.0.113.81 meta l4proto tcp th dport 8080 counter dnat ip to 198.51.100.3:80",
        "ip daddr 203.0.113.81 meta l4proto udp th dport 5353-5355 counter dnat ip to 198.51.100.3 : "
        "th dport map { 5353 : 6353, 5354 : 6354, 5355 : 6355 }",
        "ip daddr 203.0.113.81 meta l4proto sctp th dport 9000-9009 counter dnat ip to 198.51.100.3",
        "ip daddr 203.0.113.81 meta l4proto tcp th dport 2000-2009 counter dnat ip to 198.51.100.3:22",
        "ip daddr 203.0.113.81 meta l4proto tcp th dport 2222 counter dnat ip to 203.0.113.3:22",
    ]
    assert chain(rules, "nat_prerouting") == expected
    assert chain(rules, "nat_output") == expected  # the router's own traffic too, as for floating IPs


def test_scope_rules_are_the_floating_ips_for_the_forwarded_ports_only() -> None:
    rules = nft.render_rules(spec())
    noscope = "meta mark set meta mark & 0x0400ffff | 0x04000000"
    # The forwarded packets take the internal address's scope (only where it differs from the
    # external network's: instance2 needs none) ...
    assert chain(rules, "floatingip") == [
        f"ip daddr 203.0.113.81 meta l4proto tcp th dport 8080 {noscope}",
        f"ip daddr 203.0.113.81 meta l4proto udp th dport 5353-5355 {noscope}",
        f"ip daddr 203.0.113.81 meta l4proto sctp th dport 9000-9009 {noscope}",
        f"ip daddr 203.0.113.81 meta l4proto tcp th dport 2000-2009 {noscope}",
    ]
    # ... and only the replies of forwarded connections go back into the external scope.
    reply = "ct direction reply ct status dnat jump float_snat_mangle"
    assert chain(rules, "mangle_forward") == [
        f"ip saddr 198.51.100.3 meta l4proto tcp th sport 80 {reply}",
        f"ip saddr 198.51.100.3 meta l4proto udp th sport 6353-6355 {reply}",
        f"ip saddr 198.51.100.3 meta l4proto sctp th sport 9000-9009 {reply}",
        f"ip saddr 198.51.100.3 meta l4proto tcp th sport 22 {reply}",
    ]
    assert f'oifname "{QG}" meta mark set meta mark & 0x0401ffff | 0x04010000' in chain(rules, "float_snat_mangle")
    # No one-to-one SNAT: the internal host's own traffic still leaves as before.
    assert chain(rules, "float_snat") == []


def test_the_floating_address_lives_on_the_gateway() -> None:
    state = desired_state(spec(), owner="agent-1")
    assert state is not None
    assert any(a.ifname == QG and a.cidr == f"{PF_FIP}/32" for a in state.addresses)


def test_without_a_gateway_nothing_is_forwarded() -> None:
    rules = nft.render_rules(spec().model_copy(update={"gateway": None}))
    assert "dnat" not in rules and "float_snat_mangle\n" not in chain(rules, "mangle_forward")


@given(
    st.integers(1, 65535), st.integers(0, 40), st.integers(1, 65535), st.sampled_from(["tcp", "udp", "sctp", "dccp"])
)
def test_each_external_port_goes_to_its_own_internal_port(start: int, length: int, inner: int, proto: str) -> None:
    """N to N keeps each port's offset, whatever the numbers; a single port needs no map."""
    end = min(65535, start + length)
    inner = min(inner, 65535 - (end - start))
    rules = nft.render_rules(
        spec([port_forwarding(1, proto, (start, end), "198.51.100.3", (inner, inner + end - start))])
    )
    dnat = chain(rules, "nat_prerouting")[0]
    found = re.search(r"map \{ (.*) \}$", dnat)
    if found is not None:
        pairs = [tuple(int(x) for x in pair.split(" : ")) for pair in found.group(1).split(", ")]
        assert pairs == [(p, p + inner - start) for p in range(start, end + 1)]
    elif start == end:
        assert dnat.endswith(f"dnat ip to 198.51.100.3:{inner}")
    else:
        assert inner == start and dnat.endswith("dnat ip to 198.51.100.3")
