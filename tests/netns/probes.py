"""Traffic checks between test instances: real ping, and a UDP echo that says who it saw.

The echo server runs inside an instance with no process: its sockets are opened in the instance's
namespace and served by the test's event loop. It answers every datagram with the source address
it saw, which is how a test tells "no NAT" from "SNAT to the gateway" from "SNAT to the floating IP".
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from contextlib import asynccontextmanager
from typing import Any

from scopenet.datapath.example import InstanceSpec
from scopenet.netlink import Namespaces, TestInstance

ECHO_PORT = 7777
BLOCKED_WAIT = 0.4


class _Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.transport.sendto(str(addr[0]).encode(), addr)


@asynccontextmanager
async def echo_servers(instances: list[TestInstance], *, port: int = ECHO_PORT) -> Any:
    """A UDP echo on ``port`` (IPv4 and IPv6) in every instance, for the duration of the block."""
    loop = asyncio.get_running_loop()
    transports = []
    try:
        for inst in instances:
            for family, anyaddr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                s = await inst.socket(family)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((anyaddr, port))
                transport, _ = await loop.create_datagram_endpoint(_Echo, sock=s)
                transports.append(transport)
        yield
    finally:
        for t in transports:
            t.close()


async def udp_seen(src: TestInstance, dst: str, *, timeout: float = 1.0, port: int = ECHO_PORT) -> str | None:
    """Send one datagram from ``src`` to ``dst``; the source address the receiver saw, or None."""
    family = socket.AF_INET if ipaddress.ip_address(dst).version == 4 else socket.AF_INET6
    loop = asyncio.get_running_loop()
    s = await src.socket(family)
    try:
        await loop.sock_sendto(s, b"probe", (dst, port))
        data = await asyncio.wait_for(loop.sock_recv(s, 256), timeout)
        return data.decode()
    except (TimeoutError, OSError):
        return None
    finally:
        s.close()


async def ping(src: TestInstance, dst: str, *, timeout: float = 1.0) -> bool:
    """One real ICMP echo (iputils ping) from inside ``src``."""
    result = await src.exec("ping", "-n", "-c", "1", "-W", str(timeout), dst, timeout=timeout + 5)
    return result.returncode == 0


async def make_instances(ns: Namespaces, host: str | None, specs: list[InstanceSpec]) -> list[TestInstance]:
    return [
        await TestInstance.create(
            ns,
            name=s.name,
            bridge=s.bridge,
            mac=s.mac,
            addresses=s.addresses,
            gateways=s.gateways,
            routes=s.routes,
            host=host,
            port_id=str(s.port_id) if s.port_id else None,
        )
        for s in specs
    ]
