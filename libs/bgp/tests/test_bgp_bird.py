"""The BIRD 2 configuration of a speaker host: one table per speaker, peers export only their own
speaker's routes, routes via the router's gateway (tests/integration/test_bird_config.py has ``bird -p`` read it)."""

from __future__ import annotations

import uuid

import pytest

from scopenet.bgp.bird import protocol_name, render
from scopenet.contracts.bgp import AdvertisedRoute, BgpSpeakerSpec, PeerSpec

U = uuid.UUID


def spec(n: int, version: int, routes: list[tuple[str, str]], peers: list[str], **kw: object) -> BgpSpeakerSpec:
    return BgpSpeakerSpec(
        speaker_id=U(int=n),
        revision=1,
        local_as=64512,
        ip_version=version,  # type: ignore[arg-type]
        peers=[PeerSpec(id=U(int=100 + n + i), peer_ip=p, remote_as=64513, **kw) for i, p in enumerate(peers)],  # type: ignore[arg-type]
        routes=[AdvertisedRoute(destination=d, next_hop=h) for d, h in routes],
    )


V4 = spec(1, 4, [("203.0.113.0/26", "203.0.113.66"), ("203.0.113.80/32", "203.0.113.66")], ["203.0.113.100"])
V6 = spec(2, 6, [("2001:db8:a583::/64", "2001:db8::66")], ["2001:db8::100"], password="s3cret")


def test_each_speaker_has_its_table_routes_and_peers() -> None:
    conf = render([V6, V4], router_id="10.0.0.1")
    t4, t6 = f"t_{U(int=1).hex}", f"t_{U(int=2).hex}"
    assert f"ipv4 table {t4};" in conf and f"ipv6 table {t6};" in conf
    assert "  route 203.0.113.0/26 via 203.0.113.66;" in conf
    assert "  route 203.0.113.80/32 via 203.0.113.66;" in conf
    assert "  route 2001:db8:a583::/64 via 2001:db8::66;" in conf
    p4 = conf[conf.index(f"protocol bgp {protocol_name(V4.speaker_id, V4.peers[0].id)}") :]
    assert f"ipv4 {{ table {t4}; import none; export all; }};" in p4.split("}\n", 1)[0] + "}"
    assert 'password "s3cret";' in conf and "neighbor 2001:db8::100 as 64513;" in conf
    assert "router id 10.0.0.1;" in conf and "protocol kernel" not in conf  # never touches the host's routes


def test_removed_speakers_and_foreign_families_are_left_out() -> None:
    gone = V4.model_copy(update={"present": False})
    assert "203.0.113" not in render([gone])
    mixed = spec(3, 4, [("2001:db8::/64", "2001:db8::66")], ["2001:db8::1"])
    conf = render([mixed])
    assert "2001:db8" not in conf


def test_unquotable_password_is_refused() -> None:
    with pytest.raises(ValueError):
        render([spec(4, 4, [], ["192.0.2.1"], password='a"b')])
