"""BGP speakers and peers over NATS: admin-only CRUD, the member actions, and the routes a speaker
announces for the seed topology (rule 68) following the pool in and out of the scope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from scopenet.contracts.errors import BadRequest, Conflict, NotAuthorized, NotFound
from tests.helpers import eventually
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import Build, Topo, project
from tests.integration.topology.test_topology_seed import build_seed


async def last_speaker_spec(js: Any, speaker_id: Any) -> dict[str, Any] | None:
    """What the BGP daemon starting now would read for this speaker."""
    sub = await js.pull_subscribe(
        f"scopenet.v1.bgp.speaker.{speaker_id}",
        durable=None,
        stream="SCOPENET_BGP",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, inactive_threshold=10),
    )
    try:
        msgs = await sub.fetch(1, timeout=2)
    except Exception:
        return None
    finally:
        await sub.unsubscribe()
    return json.loads(msgs[0].data) if msgs else None


def routes(reply: Any) -> list[tuple[str, str]]:
    return [(r.destination, r.next_hop) for r in reply.advertised_routes]


async def test_seed_speakers_announce_only_the_scoped_subnets(topo: Topo, mk: Build, nats_client: Any) -> None:
    w = await build_seed(topo, mk)
    public = w["public"]
    v4 = await topo("bgp_speaker.create", ADMIN, bgp_speaker={"name": "s4", "local_as": 64512, "ip_version": 4})
    v6 = await topo("bgp_speaker.create", ADMIN, bgp_speaker={"name": "s6", "local_as": 64512, "ip_version": 6})
    sp4, sp6 = v4.bgp_speaker, v6.bgp_speaker
    assert sp4.advertise_tenant_networks and sp4.advertise_floating_ip_host_routes and sp4.peers == []
    peer = (
        await topo(
            "bgp_peer.create",
            ADMIN,
            bgp_peer={
                "name": "ext",
                "peer_ip": "203.0.113.99",
                "remote_as": 64513,
                "auth_type": "md5",
                "password": "s3",
            },
        )
    ).bgp_peer
    assert "password" not in peer.model_dump() and peer.auth_type == "md5"
    assert (
        await topo("bgp_speaker.add_bgp_peer", ADMIN, id=str(sp4.id), bgp_peer_id=str(peer.id))
    ).bgp_peer_id == peer.id
    for sp in (sp4, sp6):
        await topo("bgp_speaker.add_gateway_network", ADMIN, id=str(sp.id), network_id=str(public.id))
    got = await topo("bgp_speaker.get", ADMIN, id=str(sp4.id))
    assert got.bgp_speaker.peers == [peer.id] and got.bgp_speaker.networks == [public.id]

    # network2's subnets via router1's gateway; network1 (unscoped) never; the floating IP as a /32.
    r4 = routes(await topo("bgp_speaker.get_advertised_routes", ADMIN, id=str(sp4.id)))
    assert r4 == [("203.0.113.0/26", "203.0.113.66"), (f"{w['fip'].floating_ip_address}/32", "203.0.113.66")]
    r6 = routes(await topo("bgp_speaker.get_advertised_routes", ADMIN, id=str(sp6.id)))
    assert r6 == [("2001:db8:a583::/64", "2001:db8::2")]

    # The daemon's desired state is on the stream, with the peer's key.
    js = nats_client.jetstream()

    async def spec_routes() -> list[tuple[str, str]] | None:
        spec = await last_speaker_spec(js, sp4.id)
        return [(r["destination"], r["next_hop"]) for r in spec["routes"]] if spec else None

    await eventually(spec_routes, passes=lambda r: r == r4, timeout=10, every=0.05)
    spec = await last_speaker_spec(js, sp4.id)
    assert spec is not None and spec["local_as"] == 64512
    assert spec["peers"] == [{"id": str(peer.id), "peer_ip": "203.0.113.99", "remote_as": 64513, "password": "s3"}]

    # Host routes off: only the subnet.
    await topo("bgp_speaker.update", ADMIN, id=str(sp4.id), bgp_speaker={"advertise_floating_ip_host_routes": False})
    assert routes(await topo("bgp_speaker.get_advertised_routes", ADMIN, id=str(sp4.id))) == [r4[0]]

    # The pool leaves the scope: the subnet is withdrawn (also from the stream); back: announced again.
    await mk.ipam("subnetpool.update", ADMIN, id=str(w["p4"].id), subnetpool={"address_scope_id": None})

    async def advertised() -> list[tuple[str, str]]:
        return routes(await topo("bgp_speaker.get_advertised_routes", ADMIN, id=str(sp4.id)))

    await eventually(advertised, passes=lambda r: r == [], timeout=10, every=0.05)
    await eventually(spec_routes, passes=lambda r: r == [], timeout=10, every=0.05)
    await mk.ipam("subnetpool.update", ADMIN, id=str(w["p4"].id), subnetpool={"address_scope_id": str(w["s4"].id)})
    await eventually(spec_routes, passes=lambda r: r == [r4[0]], timeout=10, every=0.05)

    # Detaching network2 from the router withdraws it too.
    await topo("router.remove_router_interface", w["demo"], id=str(w["router"].id), subnet_id=str(w["sub42"].id))
    assert await advertised() == []
    await eventually(spec_routes, passes=lambda r: r == [], timeout=10, every=0.05)

    await topo("bgp_speaker.remove_gateway_network", ADMIN, id=str(sp6.id), network_id=str(public.id))
    assert routes(await topo("bgp_speaker.get_advertised_routes", ADMIN, id=str(sp6.id))) == []
    await topo("bgp_speaker.remove_bgp_peer", ADMIN, id=str(sp4.id), bgp_peer_id=str(peer.id))
    await eventually(
        lambda: last_speaker_spec(js, sp4.id),
        passes=lambda s: s is not None and s["peers"] == [],
        timeout=10,
        every=0.05,
    )
    await topo("bgp_speaker.delete", ADMIN, id=str(sp4.id))
    await eventually(
        lambda: last_speaker_spec(js, sp4.id),
        passes=lambda s: s is not None and not s["present"],
        timeout=10,
        every=0.05,
    )
    for sp in (sp6,):
        await topo("bgp_speaker.delete", ADMIN, id=str(sp.id))
    await topo("bgp_peer.delete", ADMIN, id=str(peer.id))


async def test_bgp_is_admin_only_and_validated(topo: Topo, mk: Build) -> None:
    member = project()
    with pytest.raises(NotAuthorized):
        await topo("bgp_speaker.create", member, bgp_speaker={"local_as": 64512, "ip_version": 4})
    with pytest.raises(NotAuthorized):
        await topo("bgp_peer.create", member, bgp_peer={"peer_ip": "192.0.2.1", "remote_as": 64513})
    sp = (await topo("bgp_speaker.create", ADMIN, bgp_speaker={"local_as": 4_200_000_000, "ip_version": 4})).bgp_speaker
    p1 = (await topo("bgp_peer.create", ADMIN, bgp_peer={"peer_ip": "192.0.2.1", "remote_as": 64513})).bgp_peer
    p2 = (await topo("bgp_peer.create", ADMIN, bgp_peer={"peer_ip": "192.0.2.1", "remote_as": 64514})).bgp_peer
    p6 = (await topo("bgp_peer.create", ADMIN, bgp_peer={"peer_ip": "2001:db8::9", "remote_as": 64514})).bgp_peer
    assert (await topo("bgp_speaker.list", member)).bgp_speakers == []
    assert (await topo("bgp_peer.list", member)).bgp_peers == []
    with pytest.raises(NotFound):
        await topo("bgp_speaker.get", member, id=str(sp.id))
    with pytest.raises(NotAuthorized):
        await topo("bgp_speaker.add_bgp_peer", member, id=str(sp.id), bgp_peer_id=str(p1.id))
    with pytest.raises(NotAuthorized):
        await topo("bgp_speaker.add_gateway_network", member, id=str(sp.id), network_id=str(p1.id))
    with pytest.raises(NotFound):
        await topo("bgp_speaker.get_advertised_routes", member, id=str(sp.id))

    await topo("bgp_speaker.add_bgp_peer", ADMIN, id=str(sp.id), bgp_peer_id=str(p1.id))
    with pytest.raises(Conflict) as dup:
        await topo("bgp_speaker.add_bgp_peer", ADMIN, id=str(sp.id), bgp_peer_id=str(p2.id))
    assert dup.value.type == "DuplicateBgpPeerIpException"
    with pytest.raises(BadRequest):
        await topo("bgp_speaker.add_bgp_peer", ADMIN, id=str(sp.id), bgp_peer_id=str(p6.id))
    with pytest.raises(NotFound) as na:
        await topo("bgp_speaker.remove_bgp_peer", ADMIN, id=str(sp.id), bgp_peer_id=str(p2.id))
    assert na.value.type == "BgpSpeakerPeerNotAssociated"

    net = await mk.network(ADMIN, **{"router:external": True})
    other = (await topo("bgp_speaker.create", ADMIN, bgp_speaker={"local_as": 64512, "ip_version": 4})).bgp_speaker
    await topo("bgp_speaker.add_gateway_network", ADMIN, id=str(sp.id), network_id=str(net.id))
    with pytest.raises(Conflict) as bound:
        await topo("bgp_speaker.add_gateway_network", ADMIN, id=str(other.id), network_id=str(net.id))
    assert bound.value.type == "BgpSpeakerNetworkBindingError"
    with pytest.raises(NotFound) as nn:
        await topo("bgp_speaker.remove_gateway_network", ADMIN, id=str(other.id), network_id=str(net.id))
    assert nn.value.type == "BgpSpeakerNetworkNotAssociated"

    # MD5 without a password is refused by the contract (400 on the wire).
    with pytest.raises(BadRequest):
        await topo.unchecked(
            "bgp_peer.create", ADMIN, bgp_peer={"peer_ip": "192.0.2.7", "remote_as": 1, "auth_type": "md5"}
        )
    # Deleting an associated peer detaches it.
    await topo("bgp_peer.delete", ADMIN, id=str(p1.id))
    assert (await topo("bgp_speaker.get", ADMIN, id=str(sp.id))).bgp_speaker.peers == []
    for s in (sp, other):
        await topo("bgp_speaker.delete", ADMIN, id=str(s.id))
    for p in (p2, p6):
        await topo("bgp_peer.delete", ADMIN, id=str(p.id))
