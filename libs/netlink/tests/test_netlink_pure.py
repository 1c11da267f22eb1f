"""The parts of the kernel adapters that need no root and no kernel.

Pins what an operator reads when the machine cannot run the datapath (one line, what to do), how
an nftables refusal is condensed into a router's ERROR reason (no caret lines, bounded), the host
interface names (Neutron's ``tap<port id[:11]>``, within the kernel's 15 characters), and how a link
message is read as a VXLAN device.
"""

from __future__ import annotations

import uuid
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.netlink import libnft, preflight, vxlan
from scopenet.netlink.errors import DatapathUnavailable, KernelError, NftError
from scopenet.netlink.instance import host_ifname, instance_namespace


def test_not_root_is_one_line_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(DatapathUnavailable) as exc:
        preflight.check()
    assert "needs root" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_nftables_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libnft, "_load", lambda: None)
    monkeypatch.setattr(libnft, "_binary", lambda: None)
    with pytest.raises(DatapathUnavailable) as exc:
        libnft.backend()
    assert "libnftables1" in str(exc.value) and "scripts/os-deps.sh" in str(exc.value)
    monkeypatch.setattr(libnft, "_binary", lambda: "/usr/sbin/nft")
    assert libnft.backend() == "nft"


def test_nft_errors_are_condensed_into_one_line() -> None:
    text = """
/dev/stdin:3:5-12: Error: syntax error, unexpected junk
    junk rule here
    ^^^^^^^^
/dev/stdin:9:1-4: Error: No such file or directory
    ~~~~
"""
    assert libnft._one_line(text) == (
        "/dev/stdin:3:5-12: Error: syntax error, unexpected junk | junk rule here | "
        "/dev/stdin:9:1-4: Error: No such file or directory"
    )
    assert libnft._one_line("  \n ^^^ \n") == "nft failed"
    assert len(libnft._one_line("x" * 5000)) == 1000


@given(st.text(max_size=200))
def test_one_line_is_one_bounded_line(text: str) -> None:
    line = libnft._one_line(text)
    assert line and len(line) <= 1000 and "\n" not in line and "\r" not in line


def test_an_empty_listing_is_an_empty_ruleset() -> None:
    assert libnft._parse("") == {"nftables": []}
    assert libnft._parse('{"nftables": [{"metainfo": {}}]}') == {"nftables": [{"metainfo": {}}]}
    assert libnft._parse("[]") == {"nftables": []}


def test_kernel_errors_route_a_router_to_error() -> None:
    assert issubclass(NftError, KernelError) and not issubclass(DatapathUnavailable, KernelError)


@given(st.uuids(), st.text(min_size=1, max_size=40))
def test_host_interface_names_fit_the_kernel(port: uuid.UUID, name: str) -> None:
    with_port = host_ifname(name, str(port))
    assert with_port == "tap" + str(port)[:11] and len(with_port) <= 15
    from_name = host_ifname(name)
    assert from_name.startswith("ti-") and len(from_name) <= 15 and from_name == host_ifname(name)
    assert instance_namespace("vm1") == "qinst-vm1"


class _LinkMsg:
    def __init__(self, info: dict[str, Any], flags: int) -> None:
        self.info, self.flags = info, flags

    def get_nested(self, *path: str) -> Any:
        if path[-1] == "IFLA_INFO_KIND":
            return self.info.get("kind")
        return self.info.get("data")

    def __getitem__(self, key: str) -> Any:
        return {"flags": self.flags}[key]


def test_a_link_read_as_vxlan() -> None:
    data = {"IFLA_VXLAN_ID": 1001, "IFLA_VXLAN_LOCAL": "192.0.2.1", "IFLA_VXLAN_GROUP": "239.1.1.1",
            "IFLA_VXLAN_PORT": 4789, "IFLA_VXLAN_LEARNING": 1}  # fmt: skip
    obs = vxlan.observe(_LinkMsg({"kind": "vxlan", "data": data}, flags=1), "brq-1001")
    assert (obs.kind, obs.vni, obs.local_ip, obs.group, obs.port) == ("vxlan", 1001, "192.0.2.1", "239.1.1.1", 4789)
    assert obs.learning and obs.up and obs.master == "brq-1001"
    veth = vxlan.observe(_LinkMsg({"kind": "veth", "data": data}, flags=0), None)
    assert (veth.kind, veth.vni, veth.up) == ("veth", None, False)


def test_underlay_only_when_a_local_ip_is_set() -> None:
    group = IPv4Address("239.1.1.1")
    assert vxlan.underlay(None, group=group, port=4789) is None
    u = vxlan.underlay(IPv4Address("192.0.2.1"), group=group, port=4789)
    assert u is not None and (u.local_ip, u.group, u.port) == ("192.0.2.1", "239.1.1.1", 4789)
