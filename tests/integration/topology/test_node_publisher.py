"""Another system, in another language, drives scopenet over NATS with nothing but proto/.

A Node.js program (npm package ``nats``, tests/node) creates a network and a subnet from a pool,
receives the resulting events, and gets clear error replies for malformed commands.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from scopenet.infra.select import Endpoints
from tests.integration.topology.conftest import Build

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
PROTO = Path(__file__).resolve().parents[3] / "proto"


def _node_ready() -> str:
    node = shutil.which("node")
    assert node, "Node.js is needed for this test (it ships with the development machines)"
    if not (NODE_DIR / "node_modules" / "nats").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True)
    return node


async def test_node_publisher_creates_network_and_subnet(mk: Build, topo: Any, infra: Endpoints) -> None:
    node = _node_ready()
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

    # The network the Node program made is in the pool's scope, seen from here too.
    from scopenet.contracts.base import CallContext

    ctx = CallContext(project_id=project, roles=["member"])
    net = (await topo("network.get", ctx, id=got["network"]["id"])).network
    assert net.ipv4_address_scope == scope.id
