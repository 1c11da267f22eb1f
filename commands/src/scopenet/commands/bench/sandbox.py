"""A private world for an L3 agent *process*: the benchmark's and the whole-stack tests'.

This process holds a ``Namespaces(private=True)``: its namespace thread sits in a new network and
mount namespace, with a tmpfs on /run/netns and the namespace ``host`` (the agent's host: bridges,
the host ends of router veths) inside. Programs are started *entirely* inside it —
``nsenter --net=<its netns> --mount=<its mount ns>`` — so whatever they do to "their" network, the
namespaces they create and the names they mount are the sandbox's, and the machine's own
interfaces, routes and firewall are out of their reach. The sandbox outlives those processes (a
kill -9 leaves their kernel state for the next one to adopt) and vanishes with this one.

The only way out is one this process opens: a TCP relay listening on the sandbox's loopback that
forwards to NATS on the machine's loopback (``expose``). ``cut()`` closes the relayed connections
and refuses new ones until ``restore()``: the sandbox is then cut off from NATS, as a host whose
network to the control plane failed. Probes of a process inside are made with a socket opened in
the sandbox (``http_get``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Self
from urllib.parse import urlsplit

from scopenet.netlink import Kernel, Namespaces
from scopenet.netlink.rtnl import open_ipr

HOST = "host"


class AgentSandbox:
    def __init__(self, *, host: str = HOST) -> None:
        self.host = host
        self.ns = Namespaces(private=True)
        self.kernel = Kernel(self.ns, host=host)
        self._tid = 0
        self._servers: list[asyncio.Server] = []
        self._pumps: set[asyncio.Task[None]] = set()
        self.is_cut = False
        """While True, ``expose``'s relays refuse connections (see ``cut``)."""

    async def start(self) -> Self:
        await self.ns.start()
        try:
            await self.kernel.start()  # creates the host namespace
            self._tid = await self.ns.run(threading.get_native_id)
            ipr = await open_ipr(await self.ns.run(self.ns.route_socket))
            try:
                await ipr.link("set", index=1, state="up")  # the sandbox's own loopback, for the relays
            finally:
                ipr.close()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._pumps):
            task.cancel()
        await self.kernel.close()
        await self.ns.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def ns_path(self, kind: str) -> str:
        """``/proc/<pid>/task/<tid>/ns/<kind>`` of the sandbox's thread (``net`` or ``mnt``)."""
        return f"/proc/{os.getpid()}/task/{self._tid}/ns/{kind}"

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run entirely inside the sandbox (network and mount namespace)."""
        nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
        return [nsenter, f"--net={self.ns_path('net')}", f"--mount={self.ns_path('mnt')}", "--", *argv]

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the sandbox; it is killed if this process dies first (a process left
        running would outlive its sandbox's namespaces and keep the kernel busy for nothing)."""
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        return subprocess.Popen(self.argv([setpriv, "--pdeathsig", "KILL", "--", *argv]), env=dict(env), **popen)

    async def _listener(self) -> socket.socket:
        """A TCP socket listening on the sandbox's loopback (made on its thread, used from the loop)."""

        def make() -> socket.socket:
            # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
            # and without it Nagle holds NATS's small writes for a delayed ACK (~40 ms each).
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.setblocking(False)
            return s

        return await self.ns.run(make)

    async def expose(self, url: str) -> str:
        """A ``nats://`` URL valid inside the sandbox that reaches ``url`` (on the machine's loopback)."""
        target = urlsplit(url)
        host, port = target.hostname or "127.0.0.1", target.port or 4222

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.is_cut:
                writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                writer.close()
                return
            for w in (writer, up_writer):
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst in ((reader, up_writer), (up_reader, writer)):
                task = asyncio.create_task(_pump(src, dst))
                self._pumps.add(task)
                task.add_done_callback(self._pumps.discard)

        listener = await self._listener()
        self._servers.append(await asyncio.start_server(relay, sock=listener))
        creds = target.netloc.rpartition("@")[0]  # the same user logs in through the relay
        return f"nats://{creds + '@' if creds else ''}127.0.0.1:{listener.getsockname()[1]}"

    def cut(self) -> None:
        """Cut the sandbox off from what ``expose`` reaches: every relayed connection is closed now
        (its peers see the connection drop) and new ones are closed as they come, until ``restore``."""
        self.is_cut = True
        for task in list(self._pumps):
            task.cancel()

    def restore(self) -> None:
        """Relay connections again (clients inside reconnect on their own)."""
        self.is_cut = False

    async def http_get(self, port: int, path: str, *, timeout: float = 3.0) -> tuple[int, Any]:
        """``GET http://127.0.0.1:<port><path>`` inside the sandbox: (status, JSON body or text)."""
        s = await self.ns.run(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP))
        s.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
                reader, writer = await asyncio.open_connection(sock=s)
                writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                data = await reader.read()
                writer.close()
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        with contextlib.suppress(ValueError):
            return status, json.loads(body)
        return status, body.decode(errors="replace")


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
