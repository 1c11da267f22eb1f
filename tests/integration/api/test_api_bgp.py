"""neutron-dynamic-routing's API over HTTP and with the real ``openstack bgp …`` CLI: admin only,
the password never shown, and the advertised routes of a small scoped topology."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.api.conftest import Cli, Http


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.body
    return reply.body


async def scoped_router(http: Http) -> dict[str, Any]:
    """An external network and a tenant network from one scoped pool, a router between them, and a
    second tenant network with an explicit (unscoped) cidr on the same router."""
    n = uuid.uuid4().int % 200 + 20
    scope = (
        await ok(
            await http.post("/v2.0/address-scopes", body={"address_scope": {"name": uniq("s"), "ip_version": 4}}), 201
        )
    )["address_scope"]
    pool = (
        await ok(
            await http.post(
                "/v2.0/subnetpools",
                body={
                    "subnetpool": {
                        "name": uniq("p"),
                        "prefixes": [f"100.{n}.0.0/24"],
                        "address_scope_id": scope["id"],
                        "default_prefixlen": 26,
                    }
                },
            ),
            201,
        )
    )["subnetpool"]

    async def network(**body: Any) -> dict[str, Any]:
        return (await ok(await http.post("/v2.0/networks", body={"network": {"name": uniq("n"), **body}}), 201))[
            "network"
        ]

    async def subnet(net: dict[str, Any], **body: Any) -> dict[str, Any]:
        body = {"network_id": net["id"], "ip_version": 4, "enable_dhcp": False, **body}
        return (await ok(await http.post("/v2.0/subnets", body={"subnet": body}), 201))["subnet"]

    ext = await network(**{"router:external": True})
    await subnet(ext, subnetpool_id=pool["id"], cidr=f"100.{n}.0.64/26")
    tenant = await network()
    scoped = await subnet(tenant, subnetpool_id=pool["id"])
    other = await network()
    plain = await subnet(other, cidr=f"10.{n}.7.0/24")
    router = (
        await ok(
            await http.post(
                "/v2.0/routers",
                body={"router": {"name": uniq("r"), "external_gateway_info": {"network_id": ext["id"]}}},
            ),
            201,
        )
    )["router"]
    for s in (scoped, plain):
        await ok(await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", body={"subnet_id": s["id"]}))
    router = (await ok(await http.get(f"/v2.0/routers/{router['id']}")))["router"]
    gw = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    return {"ext": ext, "scoped": scoped, "plain": plain, "gw": gw, "pool": pool}


async def test_bgp_over_http(http: Http) -> None:
    assert "bgp" in {e["alias"] for e in (await http.get("/v2.0/extensions")).body["extensions"]}
    paths = (await http.get("/openapi.json", None)).body["paths"]
    assert "get" in paths["/v2.0/bgp-speakers/{id}/get_advertised_routes"]
    t = await scoped_router(http)

    r = await http.post("/v2.0/bgp-speakers", "alice", {"bgp_speaker": {"name": "x", "local_as": 64512}})
    assert r.status in (400, 403)
    r = await http.post(
        "/v2.0/bgp-speakers", "alice", {"bgp_speaker": {"name": "x", "local_as": 64512, "ip_version": 4}}
    )
    assert r.status == 403 and r.error()["type"] == "PolicyNotAuthorized"
    r = await http.post("/v2.0/bgp-speakers", body={"bgp_speaker": {"name": "x", "local_as": 0, "ip_version": 4}})
    assert r.status == 400
    sp = (
        await ok(
            await http.post(
                "/v2.0/bgp-speakers", body={"bgp_speaker": {"name": uniq("sp"), "local_as": 64512, "ip_version": 4}}
            ),
            201,
        )
    )["bgp_speaker"]
    assert (sp["peers"], sp["networks"], sp["advertise_tenant_networks"], sp["ip_version"]) == ([], [], True, 4)
    peer = (
        await ok(
            await http.post(
                "/v2.0/bgp-peers",
                body={
                    "bgp_peer": {
                        "name": uniq("pe"),
                        "peer_ip": "192.0.2.9",
                        "remote_as": 64513,
                        "auth_type": "md5",
                        "password": "k3y",
                    }
                },
            ),
            201,
        )
    )["bgp_peer"]
    assert "password" not in peer and peer["auth_type"] == "md5"
    assert "password" not in (await ok(await http.get(f"/v2.0/bgp-peers/{peer['id']}")))["bgp_peer"]
    r = await http.post(
        "/v2.0/bgp-peers", body={"bgp_peer": {"peer_ip": "192.0.2.10", "remote_as": 1, "auth_type": "md5"}}
    )
    assert r.status == 400

    base = f"/v2.0/bgp-speakers/{sp['id']}"
    assert (await ok(await http.put(f"{base}/add_bgp_peer", body={"bgp_peer_id": peer["id"]}))) == {
        "bgp_peer_id": peer["id"]
    }
    assert (await http.put(f"{base}/add_gateway_network", "alice", {"network_id": t["ext"]["id"]})).status == 403
    assert (await ok(await http.put(f"{base}/add_gateway_network", body={"network_id": t["ext"]["id"]}))) == {
        "network_id": t["ext"]["id"]
    }
    routes = (await ok(await http.get(f"{base}/get_advertised_routes")))["advertised_routes"]
    assert routes == [{"destination": t["scoped"]["cidr"], "next_hop": t["gw"]}]
    assert (await http.get(f"{base}/get_advertised_routes", "alice")).status == 404
    assert (await ok(await http.get("/v2.0/bgp-speakers", "alice")))["bgp_speakers"] == []
    shown = (await ok(await http.get(base)))["bgp_speaker"]
    assert shown["peers"] == [peer["id"]] and shown["networks"] == [t["ext"]["id"]]

    await ok(await http.put(base, body={"bgp_speaker": {"advertise_tenant_networks": False}}))
    assert (await ok(await http.get(f"{base}/get_advertised_routes")))["advertised_routes"] == []
    r = await http.put(base, body={"bgp_speaker": {"local_as": 1}})
    assert r.status == 400
    await ok(await http.put(f"{base}/remove_gateway_network", body={"network_id": t["ext"]["id"]}))
    r = await http.put(f"{base}/remove_gateway_network", body={"network_id": t["ext"]["id"]})
    assert r.status == 404 and r.error()["type"] == "BgpSpeakerNetworkNotAssociated"
    await ok(await http.put(f"{base}/remove_bgp_peer", body={"bgp_peer_id": peer["id"]}))
    assert (await http.delete(base)).status == 204
    assert (await http.delete(f"/v2.0/bgp-peers/{peer['id']}")).status == 204
    r = await http.get(base)
    assert r.status == 404 and r.error()["type"] == "BgpSpeakerNotFound"


async def test_bgp_with_the_openstack_cli(http: Http, cli: Cli) -> None:
    t = await scoped_router(http)
    name, peer = uniq("speaker"), uniq("peer")
    sp = await cli.ok("admin", "bgp", "speaker", "create", "--local-as", "64512", "--ip-version", "4", name)
    assert sp["local_as"] == 64512 and sp["ip_version"] == 4
    pe = await cli.ok("admin", "bgp", "peer", "create", "--peer-ip", "192.0.2.77", "--remote-as", "64513", peer)
    assert pe["peer_ip"] == "192.0.2.77" and not pe.get("password")
    await cli.ok("admin", "bgp", "speaker", "add", "peer", name, peer, fmt=False)
    await cli.ok("admin", "bgp", "speaker", "add", "network", name, t["ext"]["id"], fmt=False)
    routes = await cli.ok("admin", "bgp", "speaker", "list", "advertised", "routes", name)
    assert [(r["Destination"], r["Nexthop"]) for r in routes] == [(t["scoped"]["cidr"], t["gw"])]
    shown = await cli.ok("admin", "bgp", "speaker", "show", name)
    assert shown["peers"] == [pe["id"]] and shown["networks"] == [t["ext"]["id"]]
    await cli.ok("admin", "bgp", "speaker", "delete", name, fmt=False)
    await cli.ok("admin", "bgp", "peer", "delete", peer, fmt=False)
