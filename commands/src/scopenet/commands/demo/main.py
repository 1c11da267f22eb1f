"""``scopenet demo``: the seed's walkthrough end to end, with the connectivity table at the end.

Exit codes: 0 every outcome matched; 1 something differed; 3 the control plane matched but the
datapath part could not run here (it needs root and nftables).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import aiohttp
import click
import nats

from scopenet.bus.client import BusClient
from scopenet.commands.demo import bgp
from scopenet.commands.demo import connectivity as conn
from scopenet.commands.demo.neutron import Neutron, wait_until_serving
from scopenet.commands.demo.tables import grid
from scopenet.commands.demo.walkthrough import World, admin_part, external_host_port, floating_ips, project_part
from scopenet.netlink import Namespaces

EXIT_OK, EXIT_DIFFERED, EXIT_NO_DATAPATH = 0, 1, 3


def say(text: str) -> None:
    click.secho(f"==> {text}", bold=True)


def resource_tables(w: World) -> str:
    scope_name = {s["id"]: n for n, s in w.scopes.items()}
    pool_name = {p["id"]: n for n, p in w.pools.items()}
    net_name = {n["id"]: k for k, n in w.networks.items()}
    parts = [
        grid(
            ["address scope", "id", "ip_version", "shared"],
            [(n, s["id"], s["ip_version"], s["shared"]) for n, s in w.scopes.items()],
        ),
        grid(
            ["subnet pool", "prefixes", "default_prefixlen", "address scope", "shared"],
            [
                (n, p["prefixes"], p["default_prefixlen"], scope_name.get(p["address_scope_id"]), p["shared"])
                for n, p in w.pools.items()
            ],
        ),
        grid(
            ["network", "router:external", "ipv4_address_scope", "ipv6_address_scope"],
            [
                (
                    n,
                    x.get("router:external"),
                    scope_name.get(x["ipv4_address_scope"]),
                    scope_name.get(x["ipv6_address_scope"]),
                )
                for n, x in w.networks.items()
            ],
        ),
        grid(
            ["subnet", "network", "cidr", "gateway_ip", "allocation_pools", "subnet pool"],
            [
                (
                    n,
                    net_name.get(s["network_id"]),
                    s["cidr"],
                    s["gateway_ip"],
                    [f"{p['start']}-{p['end']}" for p in s["allocation_pools"]],
                    pool_name.get(s["subnetpool_id"]),
                )
                for n, s in w.subnets.items()
            ],
        ),
    ]
    if w.router:
        gw = w.router.get("external_gateway_info") or {}
        parts.append(
            grid(
                ["router", "status", "gateway network", "gateway addresses", "enable_snat"],
                [
                    (
                        w.router["name"],
                        w.router["status"],
                        net_name.get(gw.get("network_id")),
                        [ip["ip_address"] for ip in gw.get("external_fixed_ips", [])],
                        gw.get("enable_snat"),
                    )
                ],
            )
        )
    if w.ports:
        fips = {n: f["floating_ip_address"] for n, f in w.floating_ips.items()}
        parts.append(
            grid(
                ["instance port", "network", "fixed IPs", "floating IP"],
                [
                    (n, net_name.get(p["network_id"]), [ip["ip_address"] for ip in p["fixed_ips"]], fips.get(n))
                    for n, p in w.ports.items()
                ],
            )
        )
    return "\n".join(parts)


def connectivity_table(checks: list[conn.Check]) -> str:
    return grid(
        ["from", "to", "address", "expected", "seen", "source seen by receiver", "drops", "", "why"],
        [
            (
                c.src,
                c.dst,
                c.address,
                c.expect,
                c.seen,
                c.source or "-",
                ("no route" if c.proof == "no-route" else c.dropped) if c.expect == "blocked" else "",
                "ok" if c.ok else "MISMATCH",
                c.note,
            )
            for c in checks
        ],
    )


async def _router_active(project: Neutron, w: World, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.25)):
        w.router = await project.show("routers", "router", w.router["id"])
        if w.router["status"] == "ACTIVE":
            return
        await asyncio.sleep(0.25)
    w.problems.append(f"router1 is {w.router['status']} after {timeout:.0f}s, not ACTIVE")


async def _announce(lab: conn.Lab, admin: Neutron, w: World, workdir: Path) -> bgp.ExternalRouter:
    """BGP instead of typed routes: speakers, peers, the speaker's uplink, BIRD on the external host."""
    say("admin: openstack bgp speaker create --local-as 64512 --ip-version 4|6 bgp-speaker-ip4|ip6")
    say("admin: openstack bgp peer create --peer-ip <external-host> --remote-as 64513 external-host-ip4|ip6")
    say("admin: openstack bgp speaker add peer / add network public (the speaker: BIRD 2 beside the L3 agent)")
    leg = await admin.create("ports", "port", name="bgp-speaker-uplink", network_id=w.networks["public"]["id"])
    speaker_ips = await bgp.uplink(lab.ns, lab.bus, lab.host, leg["id"])
    ext = lab.instances["external-host"]
    sp = await bgp.speakers(admin, w.networks["public"]["id"], {4: ext.ip(4), 6: ext.ip(6)})
    router = bgp.ExternalRouter(lab.ns, ext, workdir / "external-host-bird")
    await router.start(speaker_ips)
    lab.cleanups.append(router.stop)
    wanted = await bgp.advertised(admin, [s["id"] for s in sp.values()])
    learned = await bgp.converge(router, wanted)
    say("external-host: BIRD 2 learnt over BGP (no route typed by hand):")
    click.echo(grid(["prefix", "next hop"], sorted(learned)))
    w.expect("routes the external host learnt over BGP", learned, wanted)
    scoped = {w.subnets[n]["cidr"] for n in ("subnet-ip4-2", "subnet-ip6-2")}
    w.expect("prefixes announced (network2's, in the external network's scopes)", {d for d, _ in wanted}, scoped)
    return router


async def _datapath(
    lab: conn.Lab, project: Neutron, admin: Neutron, w: World, workdir: Path | None
) -> list[conn.Check]:
    use_bgp = workdir is not None
    routes = "learnt over BGP" if use_bgp else "as the seed types them"
    say(f"instances: external-host (routes {routes}), instance1 on network1, instance2 on network2")
    await lab.plug("external-host", w.ports["external-host"]["id"], None if use_bgp else conn.external_routes(w))
    await lab.plug("instance1", w.ports["instance1"]["id"])
    await lab.plug("instance2", w.ports["instance2"]["id"])
    if workdir is not None:
        await _announce(lab, admin, w, workdir)
    say("checking connectivity (ping, plus a UDP probe that reports the source address the receiver saw)")
    checks = [await lab.run(c) for c in conn.checks_without_fips(w, bgp=use_bgp)]
    await floating_ips(project, w, say)
    first = conn.checks_with_fips(w, bgp=use_bgp)
    for _ in range(40):  # the agent applies the new spec within milliseconds; allow for a busy machine
        if (await lab.run(dataclasses.replace(first[1]))).seen == "reply":
            break
        await asyncio.sleep(0.25)
    checks += [await lab.run(c) for c in first]
    return checks


async def run(
    *,
    endpoint: str,
    nats_url: str,
    tokens: tuple[str, str, str, str],
    host_netns: str | None,
    datapath_problem: str | None,
    keep: bool,
    routers: list[str],
    bgp_workdir: Path | None = None,
) -> int:
    """``bgp_workdir``: the L3 agent runs the BGP speaker; the external host learns its routes over
    BGP (BIRD 2, its files here) instead of having them typed."""
    admin_token, _, project_token, _ = tokens
    await wait_until_serving(endpoint, admin_token)
    w = World()
    async with aiohttp.ClientSession() as session:
        admin, project = Neutron(session, endpoint, admin_token), Neutron(session, endpoint, project_token)
        await admin_part(admin, w, say)
        await project_part(project, w, say)
        routers.append(w.router["id"])
        await external_host_port(admin, w)
        for name, net in list(w.networks.items()):  # their scopes are derived: read them again
            w.networks[name] = await admin.show("networks", "network", net["id"])
        w.expect(
            "public ipv4_address_scope", w.networks["public"]["ipv4_address_scope"], w.scopes["address-scope-ip4"]["id"]
        )
        w.expect(
            "public ipv6_address_scope", w.networks["public"]["ipv6_address_scope"], w.scopes["address-scope-ip6"]["id"]
        )
        checks: list[conn.Check] = []
        if host_netns is not None:
            await _router_active(project, w)
            nc = await nats.connect(nats_url)
            ns = Namespaces()
            await ns.start()
            lab = conn.Lab(ns, BusClient(nc, timeout=10), host_netns, w.router["id"])
            try:
                checks = await _datapath(lab, project, admin, w, bgp_workdir)
            finally:
                if not keep:
                    await lab.remove()
                await ns.close()
                await nc.drain()
    click.echo(resource_tables(w))
    if w.refusal:
        click.echo(f"a project creating a shared address scope: {w.refusal}")
    if checks:
        click.echo(connectivity_table(checks))
    for p in w.problems:
        click.secho(f"differs: {p}", fg="red")
    bad = [c for c in checks if not c.ok]
    if w.problems or bad:
        click.secho(f"demo: {len(w.problems) + len(bad)} outcome(s) differed", fg="red")
        return EXIT_DIFFERED
    if host_netns is None:
        click.secho(
            f"demo: the control plane matched; the datapath part needs root and nftables ({datapath_problem})",
            fg="yellow",
        )
        return EXIT_NO_DATAPATH
    how = "; the external host learnt its routes over BGP" if bgp_workdir is not None else ""
    click.secho(f"demo: all {len(checks)} connectivity checks and every allocation matched the seed{how}", fg="green")
    return EXIT_OK


def describe_keep(lines: list[str]) -> Any:
    click.echo("\n".join(["demo: --keep: the stack keeps running; reach it with the openstack CLI:", *lines]))
