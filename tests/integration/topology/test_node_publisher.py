"""Another system, in another language, drives scopenet over NATS with nothing but proto/.

A Node.js program (npm package ``nats``, tests/node) creates a network and a subnet from a pool,
receives the resulting events from JetStream, decodes them with npm's ``cloudevents`` SDK (the
``ce-*`` headers, binary mode), and gets clear error replies for malformed commands.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from scopenet.infra.select import Endpoints
from tests.integration.topology.conftest import Build
from tests.node_tools import NODE_DIR, node_with_packages

PROTO = Path(__file__).resolve().parents[3] / "proto"


async def test_node_publisher_creates_network_and_subnet(mk: Build, topo: Any, infra: Endpoints) -> None:
    node = node_with_packages()
    scope = await mk.scope(4)
    pool = await mk.pool(["100.64.0.0/16"], scope=scope, default_prefixlen=24)
    project = uuid.uuid4().hex
    proc = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "publisher.mjs"),
        infra.nats_url,
        str(pool.id),
        project,
        str(PROTO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    got = json.loads(out.decode().strip().splitlines()[-1])

    assert got["network"]["code"] == 200 and got["subnet"]["code"] == 200
    assert got["subnet"]["cidr"] == "100.64.0.0/24" and got["subnet"]["pool"] == str(pool.id)
    assert got["events"] == {"network": True, "subnet": True}, got["event_subjects"]

    unknown = got["unknown_field"]
    assert unknown["code"] == 400 and unknown["error"]["type"] == "HTTPBadRequest"
    assert "colour" in unknown["error"]["message"]
    assert got["not_json"]["code"] == 400

    # Both events, read from the stream, are CloudEvents to npm's SDK (which validated them): the
    # network's from topology, the subnet's from IPAM, each about its resource, ce-id = Nats-Msg-Id.
    ces = got["cloudevents"]
    for name, service, resource in (("network", "topology", "network"), ("subnet", "ipam", "subnet")):
        ce = ces[name]
        assert ce is not None and ce["valid"] is True, ce
        assert ce["specversion"] == "1.0" and ce["id"] == ce["nats_msg_id"] == ce["body_id"]
        assert (ce["source"], ce["type"]) == (f"/scopenet/{service}", f"org.scopenet.{service}.{resource}.created.v1")
        assert ce["subject"] == got[name]["id"] and ce["data"]["resource"]["id"] == got[name]["id"]
        assert ce["datacontenttype"] == "application/json" and ce["time"].endswith("Z")
        assert ce["dataschema"] == f"urn:scopenet:proto:schemas/events/{resource}.created.json"
        assert (PROTO / ce["dataschema"].removeprefix("urn:scopenet:proto:")).is_file()

    # The network the Node program made is in the pool's scope, seen from here too.
    from scopenet.contracts.base import CallContext

    ctx = CallContext(project_id=project, roles=["member"])
    net = (await topo("network.get", ctx, id=got["network"]["id"])).network
    assert net.ipv4_address_scope == scope.id
