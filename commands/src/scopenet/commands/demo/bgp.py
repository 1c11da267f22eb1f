"""BGP in the demo: scopenet's speakers announce, the external host's BIRD 2 learns — no route
typed by hand (the seed's closing note: "BGP routing can be used to automatically set up a static
route for your instances").

What the admin does is neutron-dynamic-routing's walkthrough through the HTTP API: a speaker per
IP family, the external host as a peer of each, ``public`` as their gateway network. The speaker
(BIRD 2 in the L3 agent's host namespace, ``SCOPENET_AGENT_BGP=1``) needs a leg on the external
network, as a dynamic-routing agent host has: an admin port on ``public`` whose addresses sit on the
host namespace's bridge. The external host runs BIRD 2 too and installs what it learns in its kernel.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
from pathlib import Path
from typing import Any

from scopenet.bus.client import BusClient
from scopenet.commands.demo.neutron import Neutron
from scopenet.commands.instance import plug
from scopenet.netlink import Namespaces, TestInstance
from scopenet.services.l3_agent.bgp.bird import bird_binaries, die_with_parent

LOCAL_AS, PEER_AS = 64512, 64513
Route = tuple[str, str]


def available() -> bool:
    return bird_binaries() is not None


async def ns_exec(ns: Namespaces, netns: str, *argv: str, timeout: float = 10) -> str:
    """Run a command in one of the namespaces; its stdout (RuntimeError on a failure)."""
    fd = await ns.run(lambda: ns.open_fd(netns))
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    try:
        proc = await asyncio.create_subprocess_exec(
            nsenter, f"--net=/proc/self/fd/{fd}", "--", *argv, pass_fds=(fd,),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(fd)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {err.decode().strip()}")
    return out.decode()


async def uplink(ns: Namespaces, bus: BusClient, host: str, port_id: str) -> dict[int, str]:
    """Put the port's addresses on its network's bridge in the host namespace: the speaker's leg."""
    view = await plug.port_view(bus, port_id)
    out: dict[int, str] = {}
    for address in view.addresses:
        iface = ipaddress.ip_interface(address)
        nodad = ["nodad"] if iface.version == 6 else []
        await ns_exec(ns, host, "ip", "addr", "replace", address, "dev", view.bridge, *nodad)
        out[iface.version] = str(iface.ip)
    return out


class ExternalRouter:
    """BIRD 2 on the external host: peers with scopenet's speakers, installs what it learns."""

    def __init__(self, ns: Namespaces, ext: TestInstance, workdir: Path) -> None:
        self.ns, self.ext, self.dir = ns, ext, workdir
        self.proc: asyncio.subprocess.Process | None = None

    def config(self, speakers: dict[int, str]) -> str:
        timers = "connect retry time 1; connect delay time 1; error wait time 1, 4; hold time 9; keepalive time 3;"
        lines = [
            f"router id {self.ext.ip(4)};",
            f'log "{self.dir / "bird.log"}" all;',
            "protocol device { scan time 10; }",
            "protocol kernel { ipv4 { import none; export all; }; }",
            "protocol kernel { ipv6 { import none; export all; }; }",
        ]
        for version, address in sorted(speakers.items()):
            lines.append(
                f"protocol bgp scopenet{version} {{ local as {PEER_AS}; neighbor {address} as {LOCAL_AS}; {timers}"
                f" ipv{version} {{ import all; export none; }}; }}"
            )
        return "\n".join(lines) + "\n"

    async def start(self, speakers: dict[int, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "bird.conf"
        conf.write_text(self.config(speakers))
        fd = await self.ns.run(lambda: self.ns.open_fd(self.ext.namespace))
        nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
        bird = (bird_binaries() or ("bird", ""))[0]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                nsenter, f"--net=/proc/self/fd/{fd}", "--", bird, "-f", "-c", str(conf),
                "-s", str(self.dir / "bird.ctl"), "-P", str(self.dir / "bird.pid"), pass_fds=(fd,),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent,
            )  # fmt: skip
        finally:
            os.close(fd)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    async def learned(self) -> set[Route]:
        """The routes BIRD installed in the external host's kernel: (prefix, next hop)."""
        out: set[Route] = set()
        for family in ("-4", "-6"):
            text = await ns_exec(self.ns, self.ext.namespace, "ip", "-j", family, "route", "show", "proto", "bird")
            for r in json.loads(text or "[]"):
                out.add((str(ipaddress.ip_network(r["dst"])), r.get("gateway", "")))
        return out


async def speakers(admin: Neutron, public_id: str, peers: dict[int, str]) -> dict[int, dict[str, Any]]:
    """neutron-dynamic-routing's walkthrough: a speaker per family, a peer each, ``public`` bound."""
    out: dict[int, dict[str, Any]] = {}
    for version, peer_ip in sorted(peers.items()):
        sp = await admin.create(
            "bgp-speakers", "bgp_speaker", name=f"bgp-speaker-ip{version}", local_as=LOCAL_AS, ip_version=version
        )
        peer = await admin.create(
            "bgp-peers", "bgp_peer", name=f"external-host-ip{version}", peer_ip=peer_ip, remote_as=PEER_AS
        )
        await admin.action("bgp-speakers", sp["id"], "add_bgp_peer", {"bgp_peer_id": peer["id"]})
        await admin.action("bgp-speakers", sp["id"], "add_gateway_network", {"network_id": public_id})
        out[version] = sp
    return out


async def advertised(admin: Neutron, speaker_ids: list[str]) -> set[Route]:
    out: set[Route] = set()
    for sid in speaker_ids:
        reply = await admin.call("GET", f"bgp-speakers/{sid}/get_advertised_routes")
        out |= {(r["destination"], r["next_hop"]) for r in reply["advertised_routes"]}
    return out


async def converge(router: ExternalRouter, wanted: set[Route], *, timeout: float = 15) -> set[Route]:
    """What the external host learnt once it holds ``wanted`` (or when ``timeout`` ran out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        learned = await router.learned()
        if wanted <= learned or loop.time() > deadline:
            return learned
        await asyncio.sleep(0.1)
