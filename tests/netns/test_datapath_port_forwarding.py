"""Port forwarding on a real kernel (docs/datapath.md#port-forwarding): the seed's router1 with a
floating IP that forwards some ports, to instance1 (unscoped: across scopes from the external
network) and to instance2 (scope A, the external network's).

An external host reaches the TCP and UDP services behind the forwarded ports, and the service sees
the host's own address (DNAT, no SNAT), as with a whole floating IP. Everything else stays shut,
proven by the router's drop counters: the internal addresses directly, a port that is not
forwarded, and — with SNAT off — the internal host sending from a forwarded port on its own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from scopenet.contracts.routerspec import RouterSpec
from scopenet.datapath import names
from scopenet.datapath.example import (
    EXT_HOST,
    GW_PORT,
    INSTANCE1,
    INSTANCE2,
    NET1_PORT,
    PF_FIP,
    ROUTER1,
    SCOPE_A,
    port_forwarding,
    router1,
)
from scopenet.netlink import TestInstance
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import Sandbox
from tests.netns.probes import BLOCKED_WAIT, echo_servers, make_instances, udp_seen

pytestmark = pytest.mark.netns

RID = str(ROUTER1)
QR1, QG = names.internal_ifname(NET1_PORT), names.gateway_ifname(GW_PORT)
EXT4, I1_4, I2_4 = "203.0.113.100", "198.51.100.3", "203.0.113.3"


FORWARDINGS = [
    port_forwarding(1, "tcp", (8080, 8080), I1_4, (80, 80)),  # across scopes: instance1 is unscoped
    port_forwarding(2, "udp", (5353, 5354), I1_4, (6353, 6354)),  # a range, shifted port by port
    port_forwarding(3, "tcp", (2222, 2222), I2_4, (22, 22), internal_scope=SCOPE_A),  # the external network's scope
]


def spec(revision: int, *, forwardings: bool = True, enable_snat: bool = True) -> RouterSpec:
    base = router1(revision=revision, floating_ip=False, enable_snat=enable_snat)
    return base.model_copy(update={"port_forwardings": FORWARDINGS if forwardings else []})


@asynccontextmanager
async def tcp_servers(inst: TestInstance, ports: list[int]) -> AsyncIterator[None]:
    """A TCP server on each port of ``inst`` that writes back the peer address it saw."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(str(writer.get_extra_info("peername")[0]).encode())
        await writer.drain()
        writer.close()

    servers = []
    try:
        for port in ports:
            s = await inst.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen()
            servers.append(await asyncio.start_server(handle, sock=s))
        yield
    finally:
        for server in servers:
            server.close()


async def tcp_seen(src: TestInstance, dst: str, port: int, *, timeout: float = 1.5) -> str | None:
    """Connect from ``src``; the address the server saw, or None (refused, reset, or silence)."""
    loop = asyncio.get_running_loop()
    s = await src.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        await asyncio.wait_for(loop.sock_connect(s, (dst, port)), timeout)
        data = await asyncio.wait_for(loop.sock_recv(s, 256), timeout)
        return data.decode() or None
    except (TimeoutError, OSError):
        return None
    finally:
        s.close()


async def udp_from(src: TestInstance, sport: int, dst: str, port: int, *, timeout: float = BLOCKED_WAIT) -> str | None:
    """One datagram from ``src``'s port ``sport``; the address the receiver saw, or None."""
    loop = asyncio.get_running_loop()
    s = await src.socket(socket.AF_INET)
    try:
        s.bind(("0.0.0.0", sport))
        await loop.sock_sendto(s, b"probe", (dst, port))
        return (await asyncio.wait_for(loop.sock_recv(s, 256), timeout)).decode()
    except (TimeoutError, OSError):
        return None
    finally:
        s.close()


class Drops:
    """Reads one drop counter of the router around a probe."""

    def __init__(self, sandbox: Sandbox, ifname: str) -> None:
        self.kernel, self.name = sandbox.kernel, f"drop_{ifname}"

    async def now(self) -> int:
        return (await self.kernel.counters(RID))[self.name]


async def _apply(reconciler: Reconciler, desired: RouterSpec) -> None:
    assert reconciler.desired(desired)
    await reconciler.wait_idle(10)
    status = reconciler.status(RID)
    assert status is not None and status.status == "ACTIVE", status


async def test_forwarded_ports_reach_the_services_and_nothing_else(sandbox: Sandbox, reconciler: Reconciler) -> None:
    await _apply(reconciler, spec(1))
    ext, inst1, inst2 = await make_instances(sandbox.ns, sandbox.host, [EXT_HOST, INSTANCE1, INSTANCE2])
    drops = Drops(sandbox, QR1)
    async with (
        tcp_servers(inst1, [80, 8081]),
        tcp_servers(inst2, [22]),
        echo_servers([inst1], port=6353),
        echo_servers([inst1], port=6354),
    ):
        # Through the floating IP's forwarded ports: TCP and UDP, across scopes and within one; the
        # services see the external host itself.
        assert await tcp_seen(ext, PF_FIP, 8080) == EXT4
        assert await udp_seen(ext, PF_FIP, port=5353) == EXT4
        assert await udp_seen(ext, PF_FIP, port=5354) == EXT4
        assert await tcp_seen(ext, PF_FIP, 2222) == EXT4

        # A port that is not forwarded reaches nothing behind the floating IP (the router itself
        # answers for the address, and nothing of it listens there).
        assert await tcp_seen(ext, PF_FIP, 8081) is None
        assert await udp_seen(ext, PF_FIP, port=6353, timeout=BLOCKED_WAIT) is None

        # Across scopes the internal address stays shut, the forwarded service's port included:
        # the scope filter drops it (the counter rises), as for a whole floating IP's fixed address.
        for probe in (
            tcp_seen(ext, I1_4, 80, timeout=BLOCKED_WAIT),
            tcp_seen(ext, I1_4, 8081, timeout=BLOCKED_WAIT),
            udp_seen(ext, I1_4, port=6353, timeout=BLOCKED_WAIT),
        ):
            before = await drops.now()
            assert await probe is None
            assert await drops.now() > before, "the router did not drop it"

        # The forwardings go: the ports are shut again.
        await _apply(reconciler, spec(2, forwardings=False))
        assert await tcp_seen(ext, PF_FIP, 8080, timeout=BLOCKED_WAIT) is None
        assert await udp_seen(ext, PF_FIP, port=5353, timeout=BLOCKED_WAIT) is None


async def test_snat_off_replies_pass_and_nothing_more(sandbox: Sandbox, reconciler: Reconciler) -> None:
    """enable_snat=false filters the gateway for IPv4 too: the replies of a forwarded connection
    are let out (re-marked into the external scope, as a floating IP's), but instance1 sending from
    a forwarded port on its own is not — a port forwarding is no way out of its scope."""
    await _apply(reconciler, spec(1, enable_snat=False))
    ext, inst1 = await make_instances(sandbox.ns, sandbox.host, [EXT_HOST, INSTANCE1])
    async with tcp_servers(inst1, [80]), echo_servers([inst1], port=6354), echo_servers([ext], port=9999):
        assert await tcp_seen(ext, PF_FIP, 8080) == EXT4
        assert await udp_seen(ext, PF_FIP, port=5354) == EXT4
        drops = Drops(sandbox, QG)
        before = await drops.now()
        assert await udp_from(inst1, 6353, EXT4, 9999) is None
        assert await drops.now() > before, "the router did not drop it"
