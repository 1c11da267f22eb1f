"""VXLAN devices in a real kernel: made with the bridges, repaired when touched, gone with the network.

One host in a private sandbox (``tests/netns/conftest.py``) with an underlay link holding the local
address; the devices are read back from the kernel with ``ip -d -j link``, as an operator would.
Traffic across hosts is ``test_fleet_vxlan.py``'s.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.contracts.topology import MAX_MTU
from scopenet.datapath import desired_state, names, plan
from scopenet.datapath.example import EXT_SEG, INSTANCE2, NET1_SEG, NET2_SEG, ROUTER1, router1
from scopenet.datapath.model import Underlay
from scopenet.datapath.render import network_vxlan
from scopenet.infra import processes
from scopenet.netlink import TestInstance
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import OWNER, Sandbox
from tests.netns.test_datapath_reconcile import converge

pytestmark = pytest.mark.netns

RID = str(ROUTER1)
LOCAL = "10.250.0.1"
UNDERLAY = Underlay(local_ip=LOCAL, group="239.1.1.1")
SEGMENTS = (EXT_SEG, NET1_SEG, NET2_SEG)


async def sh(sandbox: Sandbox, *argv: str) -> str:
    """A command in the sandbox's host namespace (what an operator would type there)."""
    done = await sandbox.ns.call(sandbox.host, lambda: subprocess.run(argv, check=True, capture_output=True, text=True))
    return done.stdout


async def vxlans(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Every VXLAN device in the host namespace: its settings and the bridge it is plugged into."""
    links = json.loads(await sh(sandbox, "ip", "-d", "-j", "link", "show", "type", "vxlan"))
    out = {}
    for link in links:
        data = link["linkinfo"]["info_data"]
        out[link["ifname"]] = {
            "id": data["id"],
            "local": data.get("local"),
            "group": data.get("group"),
            "dev": data.get("link"),
            "port": data.get("port"),
            "learning": data.get("learning"),
            "master": link.get("master"),
            "up": "UP" in link["flags"],
        }
    return out


def expected(*segments: int) -> dict[str, dict[str, Any]]:
    return {
        names.vxlan(seg): {
            "id": seg,
            "local": LOCAL,
            "group": "239.1.1.1",
            "dev": "underlay0",
            "port": 4789,
            "learning": True,
            "master": names.bridge(seg),
            "up": True,
        }
        for seg in segments
    }


@pytest.fixture
async def spanning(sandbox: Sandbox) -> AsyncIterator[Reconciler]:
    """The sandbox's host with an underlay link (``underlay0``, 10.250.0.1/24) and a reconciler using it."""
    await sh(sandbox, "ip", "link", "add", "underlay0", "mtu", "1500", "type", "veth", "peer", "name", "underlay1")
    await sh(sandbox, "ip", "addr", "add", f"{LOCAL}/24", "dev", "underlay0")
    await sh(sandbox, "ip", "link", "set", "underlay0", "up")
    rec = Reconciler(sandbox.kernel, owner=OWNER, resync_interval=3600, retry_delays=(0.2,), underlay=UNDERLAY)
    async with rec:
        yield rec


async def instance2(sandbox: Sandbox) -> TestInstance:
    """instance2 plugged on this host, making network2's bridge and device as the plug tool does."""
    return await TestInstance.create(
        sandbox.ns,
        name=INSTANCE2.name,
        bridge=INSTANCE2.bridge,
        mac=INSTANCE2.mac,
        addresses=INSTANCE2.addresses,
        host=sandbox.host,
        vxlan=network_vxlan(NET2_SEG, UNDERLAY),
    )


async def test_every_bridge_gets_its_vxlan_device(sandbox: Sandbox, spanning: Reconciler) -> None:
    spanning.desired(router1())
    await converge(spanning)
    assert await vxlans(sandbox) == expected(*SEGMENTS)
    # The kernel derives the device's MTU from the underlay's: 1500 - 50 = the networks' largest MTU.
    mtus = {json.loads(await sh(sandbox, "ip", "-j", "link", "show", v))[0]["mtu"] for v in expected(*SEGMENTS)}
    assert mtus == {MAX_MTU}
    spanning.desired(router1())
    assert await converge(spanning) == 0
    state = desired_state(router1(), owner=OWNER, nft_fingerprint=spanning._fingerprints[RID][1], underlay=UNDERLAY)
    assert not plan(state, await sandbox.kernel.observe(RID, state))


async def test_a_device_removed_or_changed_by_hand_is_repaired_on_resync(
    sandbox: Sandbox, spanning: Reconciler
) -> None:
    spanning.desired(router1())
    await converge(spanning)
    await sh(sandbox, "ip", "link", "del", names.vxlan(NET1_SEG))
    assert await converge(spanning, resync=True) == 1
    await sh(sandbox, "ip", "link", "del", names.vxlan(NET2_SEG))
    await sh(sandbox, "ip", "link", "add", names.vxlan(NET2_SEG), "type", "vxlan", "id", "7", "dstport", "8472")
    await sh(sandbox, "ip", "link", "set", names.vxlan(EXT_SEG), "nomaster")
    assert await converge(spanning, resync=True) == 2
    assert await vxlans(sandbox) == expected(*SEGMENTS)
    assert await converge(spanning, resync=True) == 0


async def test_the_last_one_to_leave_a_network_takes_the_device_with_the_bridge(
    sandbox: Sandbox, spanning: Reconciler
) -> None:
    """A bridge whose only port is its VXLAN device is empty: router and instance both remove it."""
    spanning.desired(router1())
    await converge(spanning)
    inst = await instance2(sandbox)
    spanning.forget(ROUTER1)
    await spanning.wait_idle(10)
    assert await vxlans(sandbox) == expected(NET2_SEG)  # network2 still has the instance here
    bridges = json.loads(await sh(sandbox, "ip", "-j", "link", "show", "type", "bridge"))
    assert [b["ifname"] for b in bridges] == [names.bridge(NET2_SEG)]
    await inst.delete()
    assert await vxlans(sandbox) == {}
    assert json.loads(await sh(sandbox, "ip", "-j", "link", "show", "type", "bridge")) == []


async def test_an_instance_first_on_a_host_brings_the_network_with_it(sandbox: Sandbox, spanning: Reconciler) -> None:
    """The plug tool makes the bridge with the same device the agent would: the agent's plan then
    leaves network2's bridge and device as they are."""
    inst = await instance2(sandbox)
    assert await vxlans(sandbox) == expected(NET2_SEG)
    state = desired_state(router1(), owner=OWNER, underlay=UNDERLAY)
    assert state is not None
    steps = plan(state, await sandbox.kernel.observe(RID, state)).describe()
    assert [s.split(" with ")[0] for s in steps if s.startswith("ensure")] == [
        f"ensure bridge {names.bridge(EXT_SEG)}",
        f"ensure bridge {names.bridge(NET1_SEG)}",
    ]
    spanning.desired(router1())
    await converge(spanning)
    assert await vxlans(sandbox) == expected(*SEGMENTS)
    await inst.delete()
    assert await vxlans(sandbox) == expected(*SEGMENTS)  # the router still uses network2


async def test_no_link_holding_the_local_address_is_a_clear_error(sandbox: Sandbox) -> None:
    rec = Reconciler(
        sandbox.kernel,
        owner=OWNER,
        resync_interval=3600,
        retry_delays=(30,),
        underlay=Underlay(local_ip="10.250.0.99", group="239.1.1.1"),
    )
    async with rec:
        rec.desired(router1())
        await rec.wait_idle(10)
        status = rec.status(RID)
        assert status is not None and status.status == "ERROR"
        assert (
            status.reason is not None
            and "no link in the host namespace holds the VXLAN local address 10.250.0.99" in (status.reason)
        )


async def test_the_agent_will_not_start_with_a_local_address_on_no_link() -> None:
    """Configs fail fast: one line and a non-zero exit, before the agent touches NATS."""
    async with AgentSandbox() as box:
        env = {
            "SCOPENET_NATS_URL": "nats://127.0.0.1:9",  # never reached
            "SCOPENET_AGENT_HOST_NETNS": box.host,
            "SCOPENET_VXLAN_LOCAL_IP": "10.250.0.99",
            "SCOPENET_HEALTH_PORT": "0",
        }
        proc = box.spawn(
            processes.service_argv("l3-agent"),
            env=processes.service_environ(env, inherit_scopenet=False),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode != 0
    assert "scopenet: no link in the host namespace holds the VXLAN local address 10.250.0.99" in err.decode()
