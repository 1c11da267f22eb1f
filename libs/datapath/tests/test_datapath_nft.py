"""Golden tests of the rendered nftables ruleset (pure; the kernel runs it in tests/netns).

The seed's router1 must render to the ruleset verified on a real kernel (docs/datapath.md). Only two
additive differences are allowed, and they are undone before comparing: drop counters are named
(``counter name "drop_<if>"`` instead of an anonymous ``counter``, plus their declarations), and a
``scopenet_meta`` chain carries the owner/digest label.
"""

from __future__ import annotations

import re
import uuid

from scopenet.contracts.routerspec import PortAddress, RouterPort, RouterSpec, Scope, StaticRoute
from scopenet.datapath import desired_state, names, nft
from scopenet.datapath.example import GW_PORT, NET1_PORT, NET2_PORT, ROUTER1, SCOPE_A, router1

QR1, QR2, QG = names.internal_ifname(NET1_PORT), names.internal_ifname(NET2_PORT), names.gateway_ifname(GW_PORT)

#: router1's ruleset as built by hand and verified on a real kernel, verbatim.
VERIFIED_RULESET = """
table inet scopenet_router {
  chain mangle_prerouting { type filter hook prerouting priority mangle; policy accept;
    jump scope_mark
    ct mark != 0x00000000/16 meta mark set ct mark
    jump ext_ingress_mark
    meta nfproto ipv4 jump floatingip
  }
  chain ext_ingress_mark { meta nfproto ipv4 iifname "qg-ext" meta mark set meta mark & 0xffff0002 | 0x00000002
  }
  chain scope_mark {
    iifname "qr-net1" meta mark set meta mark & 0x0400ffff | 0x04000000
    meta nfproto ipv4 iifname "qr-net2" meta mark set meta mark & 0x0401ffff | 0x04010000
    meta nfproto ipv6 iifname "qr-net2" meta mark set meta mark & 0x0402ffff | 0x04020000
    meta nfproto ipv4 iifname "qg-ext" meta mark set meta mark & 0x0401ffff | 0x04010000
    meta nfproto ipv6 iifname "qg-ext" meta mark set meta mark & 0x0402ffff | 0x04020000
  }
  chain floatingip { ip daddr 203.0.113.80 meta mark set meta mark & 0x0400ffff | 0x04000000
  }
  chain mangle_forward { type filter hook forward priority mangle; policy accept;
    ip saddr 198.51.100.3 jump float_snat_mangle
  }
  chain float_snat_mangle {
    ct mark 0x00000000/16 ct mark set meta mark & 0xffff0000
    oifname "qr-net2" meta mark set meta mark & 0x0401ffff | 0x04010000
    oifname "qg-ext" meta mark set meta mark & 0x0401ffff | 0x04010000
  }
  chain mangle_postrouting { type filter hook postrouting priority mangle; policy accept;
    meta nfproto ipv4 oifname "qg-ext" ct mark 0x00000000/16 ct mark set meta mark & 0xffff0000
  }
  chain filter_forward { type filter hook forward priority filter; policy accept;
    jump scope_filter
  }
  chain scope_filter {
    oifname "qr-net1" meta mark != 0x04000000/16 counter drop
    meta nfproto ipv4 oifname "qr-net2" meta mark != 0x04010000/16 counter drop
    meta nfproto ipv6 oifname "qr-net2" meta mark != 0x04020000/16 counter drop
    meta nfproto ipv6 oifname "qg-ext" meta mark != 0x04020000/16 counter drop
  }
  chain nat_prerouting { type nat hook prerouting priority dstnat; policy accept;
    ip daddr 203.0.113.80 counter dnat ip to 198.51.100.3
  }
  chain nat_output { type nat hook output priority -100; policy accept;
    ip daddr 203.0.113.80 counter dnat ip to 198.51.100.3
  }
  chain nat_postrouting { type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 iifname != "qg-ext" oifname != "qg-ext" ct status & dnat == 0 counter accept
    meta nfproto ipv4 jump l3_snat
  }
  chain l3_snat {
    jump float_snat
    oifname "qg-ext" ct mark 0x04010000/16 counter accept
    oifname "qg-ext" counter snat ip to 203.0.113.66
    meta mark & 0x0000ffff != 0x00000002 ct status dnat counter snat ip to 203.0.113.66
  }
  chain float_snat { ip saddr 198.51.100.3 counter snat ip to 203.0.113.80
  }
}
"""


def _tokens(text: str) -> list[str]:
    """Whitespace-insensitive: the verified text sometimes puts a chain's first rule on the brace line."""
    return text.replace("{", " { ").replace("}", " } ").split()


def _as_verified(rules: str) -> str:
    text = rules.replace(QR1, "qr-net1").replace(QR2, "qr-net2").replace(QG, "qg-ext")
    text = re.sub(r'counter name "drop_[^"]+" drop', "counter drop", text)
    text = re.sub(r"^\s*counter drop_\S+ \{ \}\n", "", text, flags=re.M)
    return f"table inet {names.TABLE} {{\n{text}}}\n"


def rules(spec: RouterSpec) -> list[str]:
    return [line.strip() for line in nft.render_rules(spec).splitlines()]


def chain(spec: RouterSpec, name: str) -> list[str]:
    lines = rules(spec)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"chain {name} {{"))
    end = lines.index("}", start)
    return lines[start + 1 : end]


def test_router1_renders_the_verified_ruleset() -> None:
    assert _tokens(_as_verified(nft.render_rules(router1()))) == _tokens(VERIFIED_RULESET)


def test_router1_transaction_golden() -> None:
    """The complete text handed to libnftables: an atomic replace, labelled, with named counters."""
    table = nft.render(router1(), owner="agent-1")
    head = table.text.splitlines()[:9]
    assert head == [
        "table inet scopenet_router {}",
        "delete table inet scopenet_router",
        "table inet scopenet_router {",
        "  chain scopenet_meta {",
        f'    accept comment "scopenet owner=agent-1 digest={table.digest}"',
        "  }",
        f"  counter drop_{QR1} {{ }}",
        f"  counter drop_{QR2} {{ }}",
        f"  counter drop_{QG} {{ }}",
    ]
    assert table.text.endswith("  }\n}\n")
    assert f'oifname "{QR1}" meta mark != 0x04000000/16 counter name "drop_{QR1}" drop' in table.text
    assert table.digest == nft.digest_of(nft.render_rules(router1()))
    assert nft.render(router1(), owner="agent-2").digest == table.digest  # the label is not the rules


def test_pool_leaving_the_scope_changes_only_network2s_ipv4() -> None:
    before, after = rules(router1()), rules(router1(network2_scoped=False))
    assert sorted(set(before) - set(after)) == [
        f'meta nfproto ipv4 iifname "{QR2}" meta mark set meta mark & 0x0401ffff | 0x04010000',
        f'meta nfproto ipv4 oifname "{QR2}" meta mark != 0x04010000/16 counter name "drop_{QR2}" drop',
        f'oifname "{QR2}" meta mark set meta mark & 0x0401ffff | 0x04010000',  # no longer in the gw scope
    ]
    assert sorted(set(after) - set(before)) == [
        f'meta nfproto ipv4 iifname "{QR2}" meta mark set meta mark & 0x0400ffff | 0x04000000',
        f'meta nfproto ipv4 oifname "{QR2}" meta mark != 0x04000000/16 counter name "drop_{QR2}" drop',
    ]


def test_snat_disabled_filters_the_gateway_and_never_snats() -> None:
    spec = router1(enable_snat=False, floating_ip=False)
    assert chain(spec, "scope_filter")[-2:] == [
        f'meta nfproto ipv4 oifname "{QG}" meta mark != 0x04010000/16 counter name "drop_{QG}" drop',
        f'meta nfproto ipv6 oifname "{QG}" meta mark != 0x04020000/16 counter name "drop_{QG}" drop',
    ]
    assert chain(spec, "mangle_postrouting") == []
    assert chain(spec, "l3_snat") == [
        "jump float_snat",
        "meta mark & 0x0000ffff != 0x00000002 ct status dnat counter snat ip to 203.0.113.66",
    ]


def test_unscoped_gateway_snats_everything_like_neutron() -> None:
    """No scope on the external network: no same-scope ACCEPT (backwards compatible NAT)."""
    spec = router1(floating_ip=False)
    gw = spec.gateway.model_copy(update={"scope_v4": Scope(), "scope_v6": Scope()})  # type: ignore[union-attr]
    spec = spec.model_copy(update={"gateway": gw})
    assert chain(spec, "l3_snat") == [
        "jump float_snat",
        f'oifname "{QG}" counter snat ip to 203.0.113.66',
        "meta mark & 0x0000ffff != 0x00000002 ct status dnat counter snat ip to 203.0.113.66",
    ]


def test_floating_ip_in_the_gateway_scope_needs_no_mark_rules() -> None:
    spec = router1()
    fip = spec.floating_ips[0].model_copy(update={"fixed_scope": SCOPE_A})
    spec = spec.model_copy(update={"floating_ips": [fip]})
    assert chain(spec, "floatingip") == [] and chain(spec, "mangle_forward") == []
    assert chain(spec, "float_snat_mangle") == ["ct mark 0x00000000/16 ct mark set meta mark & 0xffff0000"]
    assert chain(spec, "nat_prerouting") == ["ip daddr 203.0.113.80 counter dnat ip to 198.51.100.3"]


def test_router_without_gateway_only_separates_scopes() -> None:
    spec = router1().model_copy(update={"gateway": None, "floating_ips": []})
    assert chain(spec, "ext_ingress_mark") == []
    assert chain(spec, "l3_snat") == [] and chain(spec, "nat_postrouting") == []
    assert len(chain(spec, "scope_filter")) == 3


def test_ipv4_only_port_gets_ipv4_rules_only() -> None:
    port = RouterPort(
        port_id=uuid.UUID("3c4d5e6f-0000-4000-8000-000000000001"),
        mac_address="fa:16:3e:00:03:01",
        network_id=uuid.uuid4(),
        segmentation_id=77,
        addresses=[PortAddress(ip_address="10.9.0.1", prefixlen=24, subnet_id=uuid.uuid4(), cidr="10.9.0.0/24")],
    )
    spec = router1().model_copy(update={"interfaces": [port]})
    dev = names.internal_ifname(port.port_id)
    assert f'meta nfproto ipv4 iifname "{dev}" meta mark set meta mark & 0x0400ffff | 0x04000000' in rules(spec)
    assert not any("ipv6" in r and dev in r for r in rules(spec))


def test_listing_fingerprint_ignores_counters_and_handles() -> None:
    def listing(packets: int, handle: int) -> dict[str, object]:
        return {
            "nftables": [
                {"metainfo": {"version": "1.0.6"}},
                {"table": {"family": "inet", "name": names.TABLE, "handle": handle}},
                {
                    "counter": {
                        "family": "inet",
                        "name": "drop_x",
                        "table": names.TABLE,
                        "handle": 3,
                        "packets": packets,
                    }
                },
                {
                    "rule": {
                        "chain": nft.META_CHAIN,
                        "handle": handle + 1,
                        "comment": "scopenet owner=agent-1 digest=abc",
                        "expr": [{"counter": {"packets": packets, "bytes": 9}}, {"accept": None}],
                    }
                },
            ]
        }

    a, b = nft.parse_listing(listing(0, 1)), nft.parse_listing(listing(42, 7))
    assert a is not None and b is not None
    assert (a.owner, a.digest) == ("agent-1", "abc") and a.fingerprint == b.fingerprint
    assert nft.counters(listing(42, 7)) == {"drop_x": 42}
    assert nft.parse_listing({"nftables": [{"metainfo": {}}]}) is None


def test_desired_state_of_router1() -> None:
    spec = router1(floating_ip=True).model_copy(
        update={"routes": [StaticRoute(destination="10.0.0.0/8", nexthop="203.0.113.65")]}
    )
    state = desired_state(spec, owner="agent-1")
    assert state is not None
    assert state.namespace == f"qrouter-{ROUTER1}"
    assert [(v.name, v.peer, v.bridge) for v in state.veths] == [
        (QR1, "tap" + str(NET1_PORT)[:11], "brq-1001"),
        (QR2, "tap" + str(NET2_PORT)[:11], "brq-1002"),
        (QG, "tap" + str(GW_PORT)[:11], "brq-1000"),
    ]
    assert {(a.ifname, a.cidr) for a in state.addresses if a.ifname == QG} == {
        (QG, "203.0.113.66/26"),
        (QG, "2001:db8::66/64"),
        (QG, "203.0.113.80/32"),  # the floating IP answers ARP on the gateway
    }
    assert {(r.dst, r.via) for r in state.routes} == {
        ("0.0.0.0/0", "203.0.113.65"),
        ("::/0", "2001:db8::65"),
        ("10.0.0.0/8", "203.0.113.65"),
    }
    assert ("net/ipv4/ip_forward", "1") in state.sysctls
    assert desired_state(router1().model_copy(update={"admin_state_up": False}), owner="agent-1") is None
    assert desired_state(router1().model_copy(update={"present": False}), owner="agent-1") is None
