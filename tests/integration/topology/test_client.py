"""The Python client (``libs/client``) against real IPAM and topology services over NATS, and
installed alone: wheels of the contracts and the client built from the workspace, installed with
their pinned dependencies into a fresh virtualenv, which then runs docs/client.md's example
verbatim and a few calls of its own. What is importable there is only what another system gets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scopenet.client import BadRequest, Client, InvalidInput, NotFound, TransientError
from scopenet.contracts import ipam as im
from scopenet.contracts import ipam_endpoints as ipam
from scopenet.contracts import topology_endpoints as topology
from scopenet.contracts.base import ByIdCommand
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.topology import NetworkEvent, NetworkReply
from scopenet.infra.select import Endpoints

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "client.md"

pytestmark = pytest.mark.usefixtures("ipam_running", "topology_running")


def example() -> str:
    """The first Python block of docs/client.md, as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/client.md has no python example"
    return str(blocks[0])


def clean_env() -> dict[str, str]:
    """The environment without what would let the workspace leak into the fresh virtualenv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


async def run(python: str | Path, code: str, nats_url: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``code`` in a subprocess (asyncio's, so the in-process services keep serving meanwhile)."""
    env = {**clean_env(), "SCOPENET_NATS_URL": nats_url}
    proc = await asyncio.create_subprocess_exec(
        str(python), "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd="/"
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return subprocess.CompletedProcess([str(python)], proc.returncode or 0, out.decode(), err.decode())


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the client and the contracts installed from wheels built here, and
    their pinned third-party dependencies: its python."""
    tmp = tmp_path_factory.mktemp("client-alone")
    wheels, venv = tmp / "wheels", tmp / "venv"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            wheels,
            str(ROOT / "libs" / "contracts"),
            str(ROOT / "libs" / "client"),
        ],
        check=True,
        timeout=300,
        env=clean_env(),
    )
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120, env=clean_env())
    python = venv / "bin" / "python"
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-c",
            ROOT / "constraints.txt",
            "--find-links",
            wheels,
            "scopenet-client",
        ],
        check=True,
        timeout=600,
        env=clean_env(),
    )
    yield python


async def test_the_docs_example_runs_as_written_with_only_the_client_installed(alone: Path, infra: Endpoints) -> None:
    done = await run(alone, example(), infra.nats_url)
    assert done.returncode == 0, done.stderr
    created, event = done.stdout.strip().splitlines()[-2:]
    _, subnet_id, cidr = created.split()
    assert cidr.startswith("10.42.") and cidr.endswith("/24"), created
    assert event.split() == ["event", "org.scopenet.topology.topology_subnet.created.v1", subnet_id, cidr], event


async def test_only_the_contracts_and_the_client_are_installed_and_they_work(alone: Path, infra: Endpoints) -> None:
    code = f"""
import asyncio, importlib.util, json, uuid
from scopenet.client import Client, NotFound
from scopenet.contracts import ipam_endpoints as ipam, topology_endpoints as topology

async def main():
    present = {{m: importlib.util.find_spec(m) is not None for m in
               ("scopenet.bus", "scopenet.runtime", "scopenet.services", "scopenet.store", "scopenet.commands")}}
    client = await Client.connect({infra.nats_url!r}, project_id=uuid.uuid4().hex)
    async with client:
        scope = (await client.call(ipam.ADDRESS_SCOPE.create, address_scope={{"name": "alone", "ip_version": 4}}))
        try:
            await client.call(topology.NETWORK.get, id=str(uuid.uuid4()))
            missing = None
        except NotFound as exc:
            missing = [exc.code, exc.type]
    print(json.dumps({{"present": present, "scope": scope.address_scope.ip_version, "missing": missing}}))

asyncio.run(main())
"""
    done = await run(alone, code, infra.nats_url)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert not any(got["present"].values()), got["present"]  # nothing of scopenet but the two
    assert got["scope"] == 4 and got["missing"] == [404, "NetworkNotFound"], got


async def test_commands_are_typed_and_errors_are_the_contracts(infra: Endpoints) -> None:
    client = await Client.connect(infra.nats_url, project_id=uuid.uuid4().hex)
    async with client:
        pools = client.resource(ipam.SUBNETPOOL)
        pool = await pools.create(subnetpool={"name": "c", "prefixes": ["10.43.0.0/24"], "default_prefixlen": 26})
        assert isinstance(pool, im.SubnetPoolReply) and pool.subnetpool.prefixes == ["10.43.0.0/24"]
        again = await pools.get(id=pool.subnetpool.id)
        assert again.subnetpool == pool.subnetpool
        net = (await client.call(topology.NETWORK.create, network={"name": "c"})).network
        body = {"network_id": str(net.id), "ip_version": 4, "subnetpool_id": str(pool.subnetpool.id)}
        await client.call(topology.SUBNET.create, subnet=body)
        with pytest.raises(BadRequest) as err:  # the pool has a subnet
            await pools.delete(id=pool.subnetpool.id)
        assert (err.value.code, err.value.type) == (400, "SubnetPoolDeleteError")
        with pytest.raises(InvalidInput):  # refused before sending
            await pools.create(subnetpool={"name": "c", "prefixes": "not a list"})
        other = client.as_caller(uuid.uuid4().hex)
        with pytest.raises(NotFound) as missing:  # another project's pool is invisible
            await other.resource(ipam.SUBNETPOOL).get(id=pool.subnetpool.id)
        assert missing.value.type == "SubnetPoolNotFound"


async def test_no_service_answering_is_a_transient_error(infra: Endpoints) -> None:
    unserved = Endpoint("nobody", "network", "get", ByIdCommand, NetworkReply, "a command no service serves")
    client = await Client.connect(infra.nats_url, project_id=uuid.uuid4().hex, timeout=2)
    async with client:
        start = time.monotonic()
        with pytest.raises(TransientError, match="no service answers"):
            await client.call(unserved, id=uuid.uuid4())
        assert time.monotonic() - start < 2  # NATS says so at once: no timeout waited out


async def test_events_arrive_as_cloudevents_with_their_model(infra: Endpoints) -> None:
    client = await Client.connect(infra.nats_url, project_id=uuid.uuid4().hex)
    async with client, client.events(NetworkEvent) as events:
        net = (await client.call(topology.NETWORK.create, network={"name": "ev"})).network
        await client.call(topology.NETWORK.update, id=net.id, network={"name": "ev2"})
        mine = [await events.wait_for(lambda r: r.event.resource.id == net.id, timeout=30) for _ in range(2)]
    created, updated = mine
    assert isinstance(created.event, NetworkEvent) and created.event.resource.name == "ev"
    assert updated.event.resource.name == "ev2" and updated.event.previous is not None
    assert created.cloudevent.type.endswith(".network.created.v1")
    assert created.cloudevent.source == "/scopenet/topology" and created.cloudevent.subject == str(net.id)
    assert created.cloudevent.id == str(created.event.id) and created.sequence < updated.sequence


async def test_a_pool_update_through_the_client_is_seen_by_the_next_network_read(infra: Endpoints) -> None:
    client = await Client.connect(infra.nats_url, project_id=uuid.uuid4().hex)
    async with client:
        scopes = [
            (await client.call(ipam.ADDRESS_SCOPE.create, address_scope={"name": "rw", "ip_version": 4})).address_scope
            for _ in range(2)
        ]
        body = {"name": "rw", "prefixes": ["10.44.0.0/16"], "default_prefixlen": 26, "address_scope_id": scopes[0].id}
        pool = (await client.call(ipam.SUBNETPOOL.create, subnetpool=body)).subnetpool
        net = (await client.call(topology.NETWORK.create, network={"name": "rw"})).network
        body = {"network_id": str(net.id), "ip_version": 4, "subnetpool_id": str(pool.id)}
        await client.call(topology.SUBNET.create, subnet=body)
        for i in range(1, 41):
            want = scopes[i % 2].id
            await client.call(ipam.SUBNETPOOL.update, id=pool.id, subnetpool={"address_scope_id": want})
            seen = (await client.call(topology.NETWORK.get, id=net.id)).network
            assert seen.ipv4_address_scope == want, i
