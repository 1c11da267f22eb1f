"""The reconciler against a real kernel: idempotence, repair of hand-made changes, cleanup, restart."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from scopenet.datapath import desired_state, names, plan
from scopenet.datapath.example import EXT_HOST, INSTANCE2, NET1_PORT, NET1_SEG, NET2_PORT, NET2_SEG, ROUTER1, router1
from scopenet.netlink import TestInstance
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import OWNER, Sandbox
from tests.netns.probes import echo_servers, make_instances, ping, udp_seen

pytestmark = pytest.mark.netns

RID = str(ROUTER1)
NS = names.namespace(ROUTER1)
QR1 = names.internal_ifname(NET1_PORT)
QR2 = names.internal_ifname(NET2_PORT)


async def converge(reconciler: Reconciler, *, resync: bool = False) -> int:
    """Run to idle; the number of actions the last reconcile of router1 applied."""
    if resync:
        await reconciler.resync()
    await reconciler.wait_idle(10)
    status = reconciler.status(RID)
    assert status is not None and status.status == "ACTIVE", status
    return status.changes


async def host_links(sandbox: Sandbox) -> set[str]:
    assert sandbox.kernel.host_ipr is not None
    return {m.get("ifname") async for m in await sandbox.kernel.host_ipr.link("dump")}


async def by_hand(sandbox: Sandbox, namespace: str | None, *argv: str) -> None:
    await sandbox.ns.call(namespace, lambda: subprocess.run(argv, check=True, capture_output=True))


async def test_same_spec_twice_changes_nothing(sandbox: Sandbox, reconciler: Reconciler) -> None:
    spec = router1()
    reconciler.desired(spec)
    assert await converge(reconciler) > 0
    reconciler.desired(spec)
    assert await converge(reconciler) == 0
    desired = desired_state(spec, owner=OWNER, nft_fingerprint=reconciler._fingerprints[RID][1])
    assert not plan(desired, await sandbox.kernel.observe(RID, desired))


async def test_resync_repairs_what_was_changed_by_hand(sandbox: Sandbox, reconciler: Reconciler) -> None:
    reconciler.desired(router1(floating_ip=False))
    await converge(reconciler)
    ext, inst2 = await make_instances(sandbox.ns, sandbox.host, [EXT_HOST, INSTANCE2])
    async with echo_servers([inst2]):
        assert await udp_seen(ext, "203.0.113.3") == "203.0.113.100"

        await by_hand(sandbox, NS, "nft", "delete", "table", "inet", names.TABLE)
        assert await converge(reconciler, resync=True) == 1  # the table, nothing else
        assert "drop_" + QR1 in await sandbox.kernel.counters(RID)

        await by_hand(sandbox, NS, "nft", "insert", "rule", "inet", names.TABLE, "scope_filter", "accept")
        assert await converge(reconciler, resync=True) == 1  # a rule slipped in: same label, other rules
        assert await converge(reconciler, resync=True) == 0

        await by_hand(sandbox, NS, "ip", "link", "del", QR1)
        await by_hand(sandbox, NS, "ip", "addr", "del", "203.0.113.1/26", "dev", QR2)
        await by_hand(sandbox, NS, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        assert await converge(reconciler, resync=True) > 0
        assert await converge(reconciler, resync=True) == 0
        assert await udp_seen(ext, "203.0.113.3") == "203.0.113.100"

        await by_hand(sandbox, None, "ip", "netns", "delete", NS)
        assert await converge(reconciler, resync=True) > 0
        assert await converge(reconciler, resync=True) == 0
        assert await ping(ext, "203.0.113.3")
        assert await udp_seen(ext, "203.0.113.3") == "203.0.113.100"


async def test_forget_removes_everything(sandbox: Sandbox, reconciler: Reconciler) -> None:
    before = await host_links(sandbox)
    reconciler.desired(router1())
    await converge(reconciler)
    (inst2,) = await make_instances(sandbox.ns, sandbox.host, [INSTANCE2])  # keeps network2's bridge busy
    during = await host_links(sandbox)
    assert {names.bridge(NET1_SEG), names.bridge(NET2_SEG)} <= during

    reconciler.forget(ROUTER1)
    await reconciler.wait_idle(10)
    assert reconciler.status(RID) is None
    assert await sandbox.kernel.routers() == []
    after = await host_links(sandbox)
    # Router veths and the bridges nobody else uses are gone; network2's bridge still has inst2.
    assert after == before | {names.bridge(NET2_SEG), inst2.peer}
    # Forgetting again, or a late spec older than the removal, changes nothing.
    reconciler.forget(ROUTER1)
    assert not reconciler.desired(router1(revision=0))
    await reconciler.wait_idle(10)
    assert await sandbox.kernel.routers() == []


async def test_restart_adopts_the_kernel_and_sweeps_orphans(sandbox: Sandbox, reconciler: Reconciler) -> None:
    other = uuid.uuid4()
    reconciler.desired(router1())
    reconciler.desired(router1(router_id=other, port_ids=(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())))
    await reconciler.wait_idle(10)
    # A namespace someone else made with a router-like name: not ours, never touched.
    stranger = names.namespace(uuid.uuid4())
    await sandbox.ns.run(lambda: sandbox.ns.create(stranger))
    await reconciler.stop()

    # A new agent process (no memory) is told only about router1.
    restarted = Reconciler(sandbox.kernel, owner=OWNER, resync_interval=3600)
    async with restarted:
        restarted.desired(router1())
        await restarted.wait_idle(10)
        status = restarted.status(RID)
        assert status is not None and status.changes == 1  # re-asserts its table once, nothing else
        assert sorted(await sandbox.kernel.routers()) == sorted([RID, str(other), str(names.router_id_of(stranger))])
        restarted.mark_caught_up()
        await restarted.resync()
        await restarted.wait_idle(10)
        assert sorted(await sandbox.kernel.routers()) == sorted([RID, str(names.router_id_of(stranger))])


async def test_real_host_namespace_mode(sandbox: Sandbox) -> None:
    """``host=None``: bridges in the agent's own namespace (here: the sandbox's private one)."""
    from scopenet.netlink import Kernel

    kernel = Kernel(sandbox.ns, host=None)
    async with kernel:
        rec = Reconciler(kernel, owner=OWNER, resync_interval=3600)
        async with rec:
            rec.desired(router1(floating_ip=False))
            await rec.wait_idle(10)
            assert rec.status(RID).status == "ACTIVE"  # type: ignore[union-attr]
            ext, inst2 = await make_instances(sandbox.ns, None, [EXT_HOST, INSTANCE2])
            async with echo_servers([inst2]):
                assert await udp_seen(ext, "203.0.113.3") == "203.0.113.100"


async def test_crash_mid_create_leftover_is_replaced(sandbox: Sandbox, reconciler: Reconciler) -> None:
    """A crash between creating the namespace's name and mounting it leaves an empty file."""
    await sandbox.ns.run(lambda: open(sandbox.ns.path(NS), "w").close())
    assert await sandbox.kernel.owner(RID) is None  # not a namespace: nobody's
    reconciler.desired(router1())
    assert await converge(reconciler) > 0
    assert await sandbox.kernel.owner(RID) == OWNER


async def test_instance_exec_attach_and_delete(sandbox: Sandbox) -> None:
    before = await host_links(sandbox)
    (inst,) = await make_instances(sandbox.ns, sandbox.host, [INSTANCE2])
    again = TestInstance.attach(sandbox.ns, inst.name, host=sandbox.host)
    shown = await again.exec("ip", "-br", "addr", "show", "dev", "eth0")
    assert shown.returncode == 0 and "203.0.113.3/26" in shown.stdout and "2001:db8:a583::3/64" in shown.stdout
    await again.delete()
    assert await host_links(sandbox) == before  # its port, and the bridge it was the last port of
    await again.delete()  # idempotent
