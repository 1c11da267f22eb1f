"""``GET /v2.0/reachability`` and ``scopenet explain``: the verdict, reasons, fixes and hops a user
sees for the seed's shapes (an unscoped and a scoped tenant network behind one router whose gateway
is in the scope), what another project may not see (404), bad input (400 naming the parameter), and
``kernel`` null with a reason when the hosting agent does not answer (docs/reachability.md)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from scopenet.bus.client import BusClient
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.infra.select import Endpoints
from scopenet.services.l3_agent.heartbeat import Heartbeat
from tests.helpers import eventually
from tests.integration.api.conftest import ALICE_PROJECT, Http

ADMIN = CallContext(project_id="test", roles=["admin"])
WORLD = "198.18.0.1"
SCOPENET = str(Path(sys.executable).parent / "scopenet")


async def ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.body
    return reply.body


@pytest.fixture(scope="module")
async def scene(http: Http, nats_client: Any) -> AsyncIterator[dict[str, Any]]:
    """router (alice's) with its gateway on an external network of scope S, an unscoped network1 and a
    network2 from S's pool; port1 on network1, port2 on network2; an agent heartbeating (so the router
    is scheduled) that serves no kernel evidence."""
    n, t = uuid.uuid4().int % 200 + 20, uuid.uuid4().hex[:6]
    scope = (await ok(await http.post("/v2.0/address-scopes", body={"address_scope": {"name": f"rs-scope-{t}",
             "ip_version": 4, "shared": True}}), 201))["address_scope"]  # fmt: skip
    pool = (await ok(await http.post("/v2.0/subnetpools", body={"subnetpool": {"name": f"rs-pool-{t}",
            "prefixes": [f"100.{n}.0.0/24"], "address_scope_id": scope["id"], "default_prefixlen": 26,
            "shared": True}}), 201))["subnetpool"]  # fmt: skip

    async def network(name: str, **body: Any) -> dict[str, Any]:
        return (await ok(await http.post("/v2.0/networks", body={"network": {"name": name, **body}}), 201))["network"]

    async def subnet(net: dict[str, Any], **body: Any) -> dict[str, Any]:
        body = {"network_id": net["id"], "ip_version": 4, "enable_dhcp": False, **body}
        return (await ok(await http.post("/v2.0/subnets", body={"subnet": body}), 201))["subnet"]

    ext = await network(f"rs-public-{t}", **{"router:external": True})
    await subnet(ext, subnetpool_id=pool["id"], cidr=f"100.{n}.0.64/26")
    net1 = await network(f"rs-network1-{t}", project_id=ALICE_PROJECT)
    sub1 = await subnet(net1, cidr=f"10.{n}.7.0/24", project_id=ALICE_PROJECT, name=f"rs-subnet1-{t}")
    net2 = await network(f"rs-network2-{t}", project_id=ALICE_PROJECT)
    sub2 = await subnet(net2, subnetpool_id=pool["id"], project_id=ALICE_PROJECT)
    gateway = {"network_id": ext["id"]}
    body = {"router": {"name": f"rs-router-{t}", "project_id": ALICE_PROJECT, "external_gateway_info": gateway}}
    router = (await ok(await http.post("/v2.0/routers", body=body), 201))["router"]
    for s in (sub1, sub2):
        await ok(await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", body={"subnet_id": s["id"]}))
    ports = []
    for i, net in enumerate((net1, net2), 1):
        body = {"port": {"network_id": net["id"], "name": f"rs-port{i}-{t}"}}
        ports.append((await ok(await http.post("/v2.0/ports", "alice", body), 201))["port"])

    agent_id = f"rs-agent-{t}"
    beat = Heartbeat(nats_client.jetstream(), agent_id=agent_id, host=socket.gethostname(), routers=lambda: 0,
                     interval=0.5)  # fmt: skip
    task = asyncio.create_task(beat.run())
    bus = BusClient(nats_client, timeout=10)

    async def scheduled() -> bool:
        spec = await bus.call(ep.ROUTER_SPEC, ByIdCommand(context=ADMIN, id=router["id"]))
        return spec.agent_id == agent_id

    try:
        await eventually(scheduled, what="the router scheduled on the heartbeating agent")
        yield {
            "t": t,
            "pool": pool,
            "scope": scope,
            "router": router,
            "gw": router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
            "port1": ports[0],
            "port2": ports[1],
            "ip1": ports[0]["fixed_ips"][0]["ip_address"],
            "ip2": ports[1]["fixed_ips"][0]["ip_address"],
            "net1": net1,
            "agent_id": agent_id,
            "n": n,
        }
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def explain(http: Http, who: str, source: str, destination: str, **extra: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in {"source": source, "destination": destination, **extra}.items())
    return await http.get(f"/v2.0/reachability?{query}", who)


async def test_scope_mismatch_lists_reason_fix_hops_and_no_kernel(http: Http, scene: dict[str, Any]) -> None:
    body = await ok(await explain(http, "alice", scene["port1"]["id"], scene["port2"]["id"]))
    r = body["reachability"]
    assert r["verdict"] == "dropped" and r["translated_source"] is None
    assert [x["code"] for x in r["reasons"]] == ["SCOPE_MISMATCH"]
    assert f"scope rs-scope-{scene['t']}" in r["reasons"][0]["message"]
    assert [(h["kind"], h["name"]) for h in r["hops"]] == [
        ("port", scene["port1"]["name"]),
        ("network", f"rs-network1-{scene['t']}"),
        ("router", f"rs-router-{scene['t']}"),
        ("network", f"rs-network2-{scene['t']}"),
        ("port", scene["port2"]["name"]),
    ]
    assert any(f"onboard subnet rs-subnet1-{scene['t']} into a subnet pool of scope rs-scope-{scene['t']}" in f
               for f in r["fix"]), r["fix"]  # fmt: skip
    assert any(f"take subnet-pool rs-pool-{scene['t']} out of its address scope" in f for f in r["fix"]), r["fix"]
    assert r["kernel"] is None and scene["agent_id"] in r["kernel_reason"], r["kernel_reason"]


async def test_nat_and_routed_verdicts(http: Http, scene: dict[str, Any]) -> None:
    out1 = (await ok(await explain(http, "alice", scene["port1"]["id"], WORLD)))["reachability"]
    assert (out1["verdict"], out1["translated_source"]) == ("snat", scene["gw"])
    assert out1["hops"][-2]["kind"] == "external_network" and out1["hops"][-1] == {
        "kind": "external", "id": None, "name": WORLD}  # fmt: skip
    out2 = (await ok(await explain(http, "alice", scene["ip2"], WORLD)))["reachability"]
    assert (out2["verdict"], out2["translated_source"], out2["reasons"]) == ("routed", None, [])
    back = (await ok(await explain(http, "alice", WORLD, scene["port2"]["id"])))["reachability"]
    assert back["verdict"] == "routed"
    blocked = (await ok(await explain(http, "alice", WORLD, scene["ip1"])))["reachability"]
    assert blocked["verdict"] == "dropped" and [x["code"] for x in blocked["reasons"]] == ["SCOPE_MISMATCH"]
    assert any(f"associate a floating IP with port {scene['port1']['name']}" in f for f in blocked["fix"])
    host = (await ok(await explain(http, "alice", scene["port1"]["id"], f"10.{scene['n']}.7.200")))["reachability"]
    assert host["verdict"] == "routed" and host["reasons"][0]["code"] == "SAME_NETWORK"


async def test_what_another_project_cannot_see_is_404(http: Http, scene: dict[str, Any]) -> None:
    r = await explain(http, "bob", scene["port1"]["id"], scene["port2"]["id"])
    assert r.status == 404 and r.error()["type"] == "PortNotFound", r.body
    assert scene["port1"]["id"] in r.error()["message"]
    r = await explain(http, "bob", WORLD, scene["port2"]["id"])
    assert r.status == 404 and scene["port2"]["id"] in r.error()["message"]
    r = await explain(http, "bob", WORLD, f"10.{scene['n']}.7.200")  # in alice's subnet: not bob's to probe
    assert r.status == 404, r.body
    assert (await explain(http, "admin", scene["port1"]["id"], scene["port2"]["id"])).status == 200
    r = await explain(http, "alice", str(uuid.uuid4()), scene["port2"]["id"])
    assert r.status == 404 and r.error()["type"] == "PortNotFound"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("destination=198.18.0.1", "source"),
        ("source=198.18.0.1", "destination"),
        ("source=not-an-address&destination=198.18.0.1", "source"),
        ("source=198.18.0.1&destination=10.0.0.1/24", "destination"),
        ("source=198.18.0.1&destination=198.18.0.2&protocol=gre", "protocol"),
        ("source=198.18.0.1&destination=198.18.0.2&destination_port=0", "destination_port"),
        ("source=198.18.0.1&destination=198.18.0.2&destination_port=http", "destination_port"),
        ("source=198.18.0.1&destination=198.18.0.2&ip_version=5", "ip_version"),
        ("source=198.18.0.1&destination=198.18.0.2&ip_version=four", "ip_version"),
        ("source=198.18.0.1&destination=198.18.0.2&kernel=banana", "kernel"),
    ],
)
async def test_bad_input_is_400_naming_the_parameter(http: Http, query: str, field: str) -> None:
    r = await http.get(f"/v2.0/reachability?{query}", "alice")
    assert r.status == 400, r.body
    assert field in r.error()["message"], r.error()


async def test_scopenet_explain_prints_and_speaks_json(scene: dict[str, Any], infra: Endpoints) -> None:
    env = {**os.environ, "SCOPENET_NATS_URL": infra.nats_url}
    argv = [SCOPENET, "explain", scene["port1"]["id"], scene["port2"]["id"]]
    for args in (argv, [*argv, "--json"]):
        proc = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        text = out.decode()
        if "--json" in args:
            assert orjson.loads(text)["reachability"]["verdict"] == "dropped"
        else:
            assert "verdict: dropped" in text and "blocked: SCOPE_MISMATCH" in text and "fix: " in text
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        SCOPENET, "explain", str(uuid.uuid4()), WORLD, env=env, stdout=pipe, stderr=pipe
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0 and "could not be found" in err.decode()
    for bad, field in (("", "source"), ("x" * 65, "source")):
        proc = await asyncio.create_subprocess_exec(SCOPENET, "explain", bad, WORLD, env=env, stdout=pipe, stderr=pipe)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 1 and f"{field}: " in err.decode() and "Traceback" not in err.decode(), err.decode()
