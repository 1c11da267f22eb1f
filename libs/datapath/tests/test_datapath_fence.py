"""The fence's nftables text: what it renders and what it reads back."""

from __future__ import annotations

import pytest

from scopenet.datapath import fence


def test_setup_rewrites_rules_but_keeps_set_elements() -> None:
    text = fence.setup()
    # Sets are only *added* (a no-op when present), never flushed: a restarted agent keeps its lease.
    assert "flush set" not in text
    assert "flush chain bridge scopenet_fence forward" in text
    assert "flush chain bridge scopenet_fence prerouting" in text
    rules = [line for line in text.splitlines() if line.startswith("add rule")]
    assert len(rules) == 2
    assert all("@router_ports ether type != @lease" in r and r.endswith("drop") for r in rules)
    # From a router port before the bridge learns its MAC; to one where the output port is known.
    assert "prerouting iifname" in rules[0] and "forward oifname" in rules[1]


def test_renew_is_one_transaction_of_ports_and_lease() -> None:
    text = fence.renew(["tapb", "tapa", "tapa"], 8000)
    assert text.splitlines() == [
        "flush set bridge scopenet_fence router_ports",
        "flush set bridge scopenet_fence lease",
        'add element bridge scopenet_fence router_ports { "tapa", "tapb" }',
        "add element bridge scopenet_fence lease { arp timeout 8000ms, ip timeout 8000ms, ip6 timeout 8000ms }",
    ]
    # No router: no element list (nft rejects an empty one), the lease is still renewed.
    assert "router_ports {" not in fence.renew([], 1000)


@pytest.mark.parametrize("bad", ["", "x" * 16, 'ta"p', "tap 1"])
def test_renew_refuses_names_that_are_not_interfaces(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid interface name"):
        fence.renew([bad], 1000)


def test_read_back() -> None:
    listing = {
        "nftables": [
            {"counter": {"name": "fenced", "packets": 7}},
            {"set": {"name": "router_ports", "elem": ["tapa"]}},
            {"set": {"name": "lease", "elem": [{"elem": {"val": "ip", "timeout": 3, "expires": 2}}]}},
        ]
    }
    assert fence.read(listing) == (frozenset({"tapa"}), frozenset({"ip"}), 7)
    assert fence.read(None) == (frozenset(), frozenset(), 0)
