"""The seed walkthrough's topology (docs/datapath.md#worked-example-router1) built through
the NATS commands, and router1's RouterSpec compared with the structure the datapath needs."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import AGENT, Build, Heartbeats, SpecWatch, Topo, last_spec, project

NOSCOPE = {"id": None, "mark_id": 1024}


def _scope(scope: Any) -> dict[str, Any]:
    return {"id": str(scope.id), "mark_id": scope.mark_id}


def _addr(ip: str, subnet: Any) -> dict[str, Any]:
    return {
        "ip_address": ip,
        "prefixlen": int(subnet.cidr.split("/")[1]),
        "subnet_id": str(subnet.id),
        "cidr": subnet.cidr,
        "gateway_ip": subnet.gateway_ip,
    }


async def build_seed(topo: Topo, mk: Build) -> dict[str, Any]:
    s6 = await mk.scope(6)
    s4 = await mk.scope(4)
    p6 = await mk.pool(["2001:db8:a583::/48", "2001:db8::/64"], scope=s6, default_prefixlen=64)
    p4 = await mk.pool(["203.0.113.0/24"], scope=s4, default_prefixlen=26)
    # Not "public": the API suite replays the seed by name in the same database.
    public = await mk.network(ADMIN, name="topology-seed-public", **{"router:external": True})
    ext4 = await mk.subnet(ADMIN, public, pool=p4, cidr="203.0.113.64/26", enable_dhcp=False)
    ext6 = await mk.subnet(ADMIN, public, pool=p6, cidr="2001:db8::/64", gateway_ip="2001:db8::1", enable_dhcp=False)
    demo = project()
    net1 = await mk.network(demo, name="network1")
    net2 = await mk.network(demo, name="network2")
    sub41 = await mk.subnet(demo, net1, cidr="198.51.100.0/26", name="subnet-ip4-1")
    sub61 = await mk.subnet(
        demo,
        net1,
        cidr="2001:db8:80d2:c4d3::/64",
        ip_version=6,
        ipv6_ra_mode="slaac",
        ipv6_address_mode="slaac",
        gateway_ip="2001:db8:80d2:c4d3::1",
        name="subnet-ip6-1",
    )
    sub42 = await mk.subnet(demo, net2, pool=p4, name="subnet-ip4-2")
    sub62 = await mk.subnet(demo, net2, pool=p6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac", name="subnet-ip6-2")
    router = await mk.router(demo, name="router1", external_gateway_info={"network_id": str(public.id)})
    for s in (sub41, sub42, sub61, sub62):
        await mk.attach(demo, router, s)
    inst1 = await mk.port(demo, net1, name="instance1", device_owner="compute:nova")
    fip = (
        await topo(
            "floatingip.create", demo, floatingip={"floating_network_id": str(public.id), "port_id": str(inst1.id)}
        )
    ).floatingip
    return {k: v for k, v in locals().items() if k not in ("topo", "mk")}


async def test_seed_router1_spec(
    topo: Topo, mk: Build, agents: Heartbeats, spec_watch: SpecWatch, nats_client: Any
) -> None:
    w = await build_seed(topo, mk)
    demo, router, fip = w["demo"], w["router"], w["fip"]
    assert (w["sub42"].cidr, w["sub62"].cidr) == ("203.0.113.0/26", "2001:db8:a583::/64")
    net2 = (await topo("network.get", demo, id=str(w["net2"].id))).network
    assert (net2.ipv4_address_scope, net2.ipv6_address_scope) == (w["s4"].id, w["s6"].id)
    net1 = (await topo("network.get", demo, id=str(w["net1"].id))).network
    assert (net1.ipv4_address_scope, net1.ipv6_address_scope) == (None, None)
    assert fip.router_id == router.id and fip.fixed_ip_address == "198.51.100.2" and fip.status == "ACTIVE"
    router = (await topo("router.get", demo, id=str(router.id))).router
    gw_ips = [f.ip_address for f in router.external_gateway_info.external_fixed_ips]
    assert gw_ips == ["203.0.113.66", "2001:db8::2"] and router.external_gateway_info.enable_snat

    ports = {p.id: p for p in (await topo("port.list", ADMIN, filters={"device_id": str(router.id)})).ports}
    gw_port = next(p for p in ports.values() if p.device_owner == "network:router_gateway")
    by_ip = {f.ip_address: p for p in ports.values() for f in p.fixed_ips}

    def iface(ip: str, net: Any, subnet: Any, v4: dict[str, Any], v6: dict[str, Any]) -> dict[str, Any]:
        p = by_ip[ip]
        return {
            "port_id": str(p.id),
            "mac_address": p.mac_address,
            "network_id": str(net.id),
            "segmentation_id": net.provider_segmentation_id,
            "mtu": 1450,
            "addresses": [_addr(ip, subnet)],
            "scope_v4": v4,
            "scope_v6": v6,
        }

    a4, a6 = _scope(w["s4"]), _scope(w["s6"])
    public = w["public"]
    spec = await spec_watch.wait_for(lambda s: s["router_id"] == str(router.id) and len(s["floating_ips"]) == 1)
    expected = {
        "type": "scopenet.v1.router_spec",
        "router_id": str(router.id),
        "revision": spec["revision"],
        "agent_id": AGENT,
        "present": True,
        "admin_state_up": True,
        "gateway": {
            "port_id": str(gw_port.id),
            "mac_address": gw_port.mac_address,
            "network_id": str(public.id),
            "segmentation_id": public.provider_segmentation_id,
            "mtu": 1450,
            "addresses": [_addr("203.0.113.66", w["ext4"]), _addr("2001:db8::2", w["ext6"])],
            "scope_v4": a4,
            "scope_v6": a6,
            "enable_snat": True,
        },
        "interfaces": [
            iface("198.51.100.1", net1, w["sub41"], NOSCOPE, NOSCOPE),
            iface("203.0.113.1", net2, w["sub42"], a4, a6),
            iface("2001:db8:80d2:c4d3::1", net1, w["sub61"], NOSCOPE, NOSCOPE),
            iface("2001:db8:a583::1", net2, w["sub62"], a4, a6),
        ],
        "floating_ips": [
            {
                "id": str(fip.id),
                "floating_ip_address": fip.floating_ip_address,
                "fixed_ip_address": "198.51.100.2",
                "port_id": str(w["inst1"].id),
                "fixed_scope": NOSCOPE,
            }
        ],
        "routes": [],
        "port_forwardings": [],
    }
    assert spec == expected
    # The stream holds exactly this as the router's desired state (an agent starting now reads it) ...
    assert await last_spec(nats_client.jetstream(), AGENT, router.id) == spec
    # ... and the router.spec command computes the same from the database.
    assert (await topo("router.spec", ADMIN, id=str(router.id))).model_dump(mode="json") == spec


async def test_pool_rescope_republishes_router(
    topo: Topo, mk: Build, agents: Heartbeats, spec_watch: SpecWatch
) -> None:
    """IPAM event → RouterSpec: a pool moving scope changes the interface marks of every router on
    a network holding a subnet of that pool; the latency is measured (target p99 ≤ 100 ms)."""
    alice = project()
    sa, sb = await mk.scope(4), await mk.scope(4)
    pool = await mk.pool(["100.80.0.0/16"], scope=sa, default_prefixlen=24)
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, pool=pool)
    router = await mk.router(alice)
    await mk.attach(alice, router, sub)
    await spec_watch.wait_for(lambda s: s["router_id"] == str(router.id) and s["interfaces"])
    loop = asyncio.get_running_loop()
    lags = []
    for i in range(20):
        target = sb if i % 2 == 0 else sa
        t0, seen = loop.time(), len(spec_watch.specs)
        await mk.ipam("subnetpool.update", ADMIN, id=str(pool.id), subnetpool={"address_scope_id": str(target.id)})
        spec = await spec_watch.wait_for(
            lambda s, target=target: (
                s["router_id"] == str(router.id)
                and bool(s["interfaces"])
                and s["interfaces"][0]["scope_v4"] == _scope(target)
            ),
            timeout=5,
            since=seen,
        )
        lags.append(next(t for _, s, t in spec_watch.specs if s is spec) - t0)
    lags.sort()
    p50, p99 = lags[len(lags) // 2], lags[-1]
    print(f"pool scope change -> RouterSpec published: p50 {p50 * 1000:.1f} ms, max {p99 * 1000:.1f} ms")
    assert p99 < 0.5, lags
    net_view = (await topo("network.get", alice, id=str(net.id))).network
    assert net_view.ipv4_address_scope == sa.id
