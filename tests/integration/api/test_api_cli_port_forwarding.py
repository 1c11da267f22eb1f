"""Port forwarding on floating IPs (``floating-ip-port-forwarding`` and its port ranges) with the real
``openstack`` CLI: ``floating ip port forwarding create|list|show|set|delete``, Neutron's refusals,
racing creates that the database's constraints decide, and the RouterSpec an agent gets
(docs/neutron.md#port-forwarding)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from scopenet.bus.client import BusClient
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import ByIdCommand, CallContext
from tests.integration.api.conftest import ADMIN_PROJECT, Cli, Http

PF = ("floating", "ip", "port", "forwarding")


@pytest.fixture
async def lab(http: Http) -> dict[str, Any]:
    """Alice's router between an external network (admin's) and her network, two VM ports on it, a
    floating IP; plus a port on a network the router does not reach. (Made over HTTP: the CLI is for
    what is tested.)"""
    tag = uuid.uuid4().hex[:8]
    n = int(tag[:2], 16)

    async def make(who: str, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        key = collection[:-1]
        reply = await http.post(f"/v2.0/{collection}", who, {key: body})
        assert reply.status == 201, reply.body
        return reply.body[key]  # type: ignore[no-any-return]

    ext = await make("admin", "networks", {"name": f"pf-ext-{tag}", "router:external": True})
    await make("admin", "subnets", {"network_id": ext["id"], "ip_version": 4, "cidr": f"100.64.{n}.0/24"})
    net = await make("alice", "networks", {"name": f"pf-net-{tag}"})
    sub = await make("alice", "subnets", {"network_id": net["id"], "ip_version": 4, "cidr": "10.88.0.0/24"})
    router = await make(
        "alice", "routers", {"name": f"pf-router-{tag}", "external_gateway_info": {"network_id": ext["id"]}}
    )
    reply = await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", "alice", {"subnet_id": sub["id"]})
    assert reply.status == 200, reply.body
    vm = await make("alice", "ports", {"network_id": net["id"]})
    other = await make("alice", "ports", {"network_id": net["id"]})
    far_net = await make("alice", "networks", {"name": f"pf-far-{tag}"})
    await make("alice", "subnets", {"network_id": far_net["id"], "ip_version": 4, "cidr": "10.89.0.0/24"})
    far = await make("alice", "ports", {"network_id": far_net["id"]})
    fip = await make("alice", "floatingips", {"floating_network_id": ext["id"]})
    return {
        "ext": ext["id"],
        "router": router["id"],
        "vm": vm["id"],
        "vm_ip": vm["fixed_ips"][0]["ip_address"],
        "other": other["id"],
        "other_ip": other["fixed_ips"][0]["ip_address"],
        "far": far["id"],
        "far_ip": far["fixed_ips"][0]["ip_address"],
        "fip": fip["id"],
        "sub": sub["id"],
    }


def body(lab: dict[str, Any], port: str = "vm", protocol: str = "tcp", **ports: Any) -> dict[str, Any]:
    """A POST body forwarding ``ports`` to ``port``'s address."""
    inner = {"protocol": protocol, "internal_port_id": lab[port], "internal_ip_address": lab[f"{port}_ip"]}
    return {"port_forwarding": {**inner, **ports}}


def create_args(lab: dict[str, Any], *, ext: str, inner: str, proto: str = "tcp", port: str = "vm") -> list[str]:
    return [
        *PF, "create", "--internal-ip-address", lab[f"{port}_ip"], "--port", lab[port],
        "--internal-protocol-port", inner, "--external-protocol-port", ext, "--protocol", proto, lab["fip"],
    ]  # fmt: skip


async def test_create_list_show_set_delete(lab: dict[str, Any], cli: Cli) -> None:
    web = await cli.ok("alice", *create_args(lab, ext="8080", inner="80"), "--description", "web")
    assert {k: web[k] for k in ("protocol", "external_port", "internal_port", "internal_ip_address")} == {
        "protocol": "tcp",
        "external_port": 8080,
        "internal_port": 80,
        "internal_ip_address": lab["vm_ip"],
    }
    assert web["internal_port_id"] == lab["vm"] and web["description"] == "web"
    assert (web["external_port_range"], web["internal_port_range"]) == ("8080:8080", "80:80")

    # a range, N to N
    games = await cli.ok("alice", *create_args(lab, ext="5000:5010", inner="6000:6010", proto="udp"))
    assert (games["external_port"], games["external_port_range"], games["internal_port_range"]) == (
        None,
        "5000:5010",
        "6000:6010",
    )

    listed = await cli.ok("alice", *PF, "list", lab["fip"])
    assert sorted(p["ID"] for p in listed) == sorted([web["id"], games["id"]])
    only_udp = await cli.ok("alice", *PF, "list", "--protocol", "udp", lab["fip"])
    assert [p["ID"] for p in only_udp] == [games["id"]]

    await cli.ok("alice", *PF, "set", "--external-protocol-port", "8081", "--description", "moved",
                 lab["fip"], web["id"], fmt=False)  # fmt: skip
    shown = await cli.ok("alice", *PF, "show", lab["fip"], web["id"])
    assert (shown["external_port"], shown["internal_port"], shown["description"]) == (8081, 80, "moved")

    # the floating IP is now served by the router, as Neutron shows it, and still unassociated
    fip = await cli.ok("alice", "floating", "ip", "show", lab["fip"])
    assert (fip["router_id"], fip["port_id"], fip["status"]) == (lab["router"], None, "ACTIVE")

    await cli.ok("alice", *PF, "delete", lab["fip"], web["id"], games["id"], fmt=False)
    assert await cli.ok("alice", *PF, "list", lab["fip"]) == []
    fip = await cli.ok("alice", "floating", "ip", "show", lab["fip"])
    assert (fip["router_id"], fip["status"]) == (None, "DOWN")


async def test_neutrons_refusals(lab: dict[str, Any], cli: Cli, http: Http) -> None:
    await cli.ok("alice", *create_args(lab, ext="8080", inner="80"))
    await cli.ok("alice", *create_args(lab, ext="7000:7009", inner="7000:7009"))

    async def refused(*args: str, code: str, words: str) -> None:
        res = await cli("alice", *args)
        assert res.code == 1 and code in res.err and words in res.err, res.err

    # the same external port and protocol, or an overlapping range, on one floating IP
    await refused(*create_args(lab, ext="8080", inner="81", port="other"), code="400", words="port collision")
    await refused(*create_args(lab, ext="7005:7020", inner="90", port="other"), code="400", words="port collision")
    # ... while another protocol may take it
    await cli.ok("alice", *create_args(lab, ext="8080", inner="80", proto="udp"))
    # the same internal socket twice
    await refused(*create_args(lab, ext="9090", inner="80"), code="400", words="internal_port_range")
    # N to M ranges of different lengths (the CLI refuses it itself; the API too)
    reply = await http.post(
        f"/v2.0/floatingips/{lab['fip']}/port_forwardings",
        "alice",
        body(lab, external_port_range="100:110", internal_port_range="200:205"),
    )
    assert reply.status == 400 and "N-N or 1-N" in reply.error()["message"]
    # an address that is not the port's
    bad_ip = create_args(lab, ext="2222", inner="22")
    bad_ip[bad_ip.index(lab["vm_ip"])] = "10.88.0.250"
    await refused(*bad_ip, code="400", words="not suitable")
    # a subnet the floating IP's router does not reach
    await refused(*create_args(lab, ext="2222", inner="22", port="far"), code="400", words="not reachable")
    # a protocol without ports
    icmp = body(lab, protocol="icmp", internal_port=1, external_port=1)
    reply = await http.post(f"/v2.0/floatingips/{lab['fip']}/port_forwardings", "alice", icmp)
    assert reply.status == 400 and "no ports" in reply.error()["message"]

    # a floating IP with port forwardings is not associated with a port, nor deleted
    res = await cli("alice", "floating", "ip", "set", "--port", lab["other"], lab["fip"], fmt=False)
    assert res.code == 1 and "in use by Port Forwarding" in res.err, res.err
    res = await cli("alice", "floating", "ip", "delete", lab["fip"], fmt=False)
    assert res.code == 1 and "in use by Port Forwarding" in res.err, res.err

    # ... and the other way round: an associated floating IP takes no port forwarding, nor does a
    # port bound to a floating IP
    whole = await cli.ok("alice", "floating", "ip", "create", "--port", lab["other"], lab["ext"])
    reply = await http.post(
        f"/v2.0/floatingips/{whole['id']}/port_forwardings",
        "alice",
        body(lab, internal_port=22, external_port=22),
    )
    assert reply.status == 409 and reply.error()["type"] == "FloatingIPPortAlreadyAssociated"
    await refused(*create_args(lab, ext="2222", inner="22", port="other"), code="409", words="binding floating IP")


async def test_projects_do_not_see_each_others(lab: dict[str, Any], cli: Cli, http: Http) -> None:
    pf = await cli.ok("alice", *create_args(lab, ext="443", inner="443"))
    base = f"/v2.0/floatingips/{lab['fip']}/port_forwardings"
    for reply in (await http.get(base, "bob"), await http.get(f"{base}/{pf['id']}", "bob")):
        assert reply.status == 404 and reply.error()["type"] == "FloatingIPNotFound"
    reply = await http.delete(f"{base}/{pf['id']}", "bob")
    assert reply.status == 404
    assert (await http.get(f"{base}/{pf['id']}", "admin")).status == 200
    # bob's floating IP cannot forward to alice's port
    bobs = await cli.ok("bob", "floating", "ip", "create", lab["ext"])
    reply = await http.post(
        f"/v2.0/floatingips/{bobs['id']}/port_forwardings",
        "bob",
        body(lab, internal_port=22, external_port=22),
    )
    assert reply.status == 404 and reply.error()["type"] == "PortNotFound"
    assert (await http.get("/v2.0/floatingips/not-a-uuid/port_forwardings", "alice")).status == 404


async def test_racing_creates_get_one_port_each(lab: dict[str, Any], http: Http) -> None:
    """Sixteen clients race for overlapping external ranges of one floating IP: the exclusion
    constraint lets exactly one win, the others hear Neutron's 400."""
    base = f"/v2.0/floatingips/{lab['fip']}/port_forwardings"
    bodies = [body(lab, external_port_range=f"{3000 + i}:{3020 + i}", internal_port=1000 + i) for i in range(16)]
    replies = await asyncio.gather(*(http.post(base, "alice", b) for b in bodies))
    assert sorted(r.status for r in replies) == [201] + [400] * 15, [r.body for r in replies]
    assert len((await http.get(base, "alice")).body["port_forwardings"]) == 1


async def test_the_router_spec_carries_them_and_the_port_takes_them_along(
    lab: dict[str, Any], cli: Cli, http: Http, nats_client: Any
) -> None:
    await cli.ok("alice", *create_args(lab, ext="8080", inner="80"))
    await cli.ok("alice", *create_args(lab, ext="5000:5001", inner="6000:6001", proto="udp"))
    fip = (await http.get(f"/v2.0/floatingips/{lab['fip']}", "alice")).body["floatingip"]
    bus = BusClient(nats_client, timeout=10)
    admin = CallContext(project_id=ADMIN_PROJECT, roles=["admin"])
    spec = await bus.call(ep.ROUTER_SPEC, ByIdCommand(context=admin, id=uuid.UUID(lab["router"])))
    got = sorted(
        (p.floating_ip_address, p.protocol, p.external_port_start, p.external_port_end, p.internal_ip_address,
         p.internal_port_start, p.internal_port_end)
        for p in spec.port_forwardings
    )  # fmt: skip
    address = fip["floating_ip_address"]
    assert got == [
        (address, "tcp", 8080, 8080, lab["vm_ip"], 80, 80),
        (address, "udp", 5000, 5001, lab["vm_ip"], 6000, 6001),
    ]
    assert spec.floating_ips == []  # forwarding some ports is not associating the address

    # the interface the forwardings go through stays while they need it
    path = f"/v2.0/routers/{lab['router']}/remove_router_interface"
    reply = await http.put(path, "alice", {"subnet_id": lab["sub"]})
    assert reply.status == 409 and reply.error()["type"] == "RouterInterfaceInUseByFloatingIP"

    # the internal port goes: its forwardings go with it, and the floating IP leaves the router
    await cli.ok("alice", "port", "delete", lab["vm"], fmt=False)
    assert await cli.ok("alice", *PF, "list", lab["fip"]) == []
    assert (await cli.ok("alice", "floating", "ip", "show", lab["fip"]))["router_id"] is None
    spec = await bus.call(ep.ROUTER_SPEC, ByIdCommand(context=admin, id=uuid.UUID(lab["router"])))
    assert spec.port_forwardings == []
    await cli.ok("alice", "floating", "ip", "delete", lab["fip"], fmt=False)
