"""The seed's walkthrough through the NATS commands of the services that exist.

The admin creates the shared scopes and pools (seed steps 1-2); a project then takes subnets from
them and one unscoped subnet, and the demo shows the allocations and each one's scope. It exits
non-zero if anything differs from what the seed document shows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import click
import nats

from scopenet.bus.client import BusClient
from scopenet.contracts.base import CallContext, ListCommand
from scopenet.contracts.subjects import ALL_ENDPOINTS, Endpoint
from scopenet.errors import DomainError, TransientError
from scopenet.services.demo.tables import grid, show

ADMIN = CallContext(project_id="098429d072d34d3596c88b7dbf7e91b6", roles=["admin"], request_id="demo")
PROJECT = CallContext(project_id="c6bbd6a83b4c4f1e9cc6b4b1b8a4e6a1", roles=["member"], request_id="demo")


def _ep(tail: str) -> Endpoint:
    return next(e for e in ALL_ENDPOINTS if e.subject.endswith("." + tail))


class Caller:
    def __init__(self, bus: BusClient) -> None:
        self.bus = bus

    async def __call__(self, tail: str, ctx: CallContext, **body: Any) -> Any:
        ep = _ep(tail)
        return await self.bus.call(ep, ep.request.model_validate({"context": ctx.model_dump(), **body}))


async def _wait_ready(call: Caller, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await call.bus.call(_ep("address_scope.list"), ListCommand(context=ADMIN))
            return
        except TransientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def step(text: str) -> None:
    click.secho(f"==> {text}", bold=True)


async def run(nats_url: str) -> bool:
    nc = await nats.connect(nats_url)
    ok = True
    try:
        call = Caller(BusClient(nc, timeout=10))
        await _wait_ready(call)
        step("admin: openstack address scope create --share --ip-version 6 address-scope-ip6 (and ip4)")
        s6 = (
            await call(
                "address_scope.create",
                ADMIN,
                address_scope={"name": "address-scope-ip6", "ip_version": 6, "shared": True},
            )
        ).address_scope
        s4 = (
            await call(
                "address_scope.create",
                ADMIN,
                address_scope={"name": "address-scope-ip4", "ip_version": 4, "shared": True},
            )
        ).address_scope
        click.echo(show(s6.model_dump(mode="json"), ["id", "ip_version", "name", "project_id", "shared"]))
        step("admin: openstack subnet pool create --address-scope ... --share subnet-pool-ip6 / subnet-pool-ip4")
        p6 = (
            await call(
                "subnetpool.create",
                ADMIN,
                subnetpool={
                    "name": "subnet-pool-ip6",
                    "prefixes": ["2001:db8:a583::/48"],
                    "default_prefixlen": 64,
                    "address_scope_id": str(s6.id),
                    "shared": True,
                },
            )
        ).subnetpool
        p4 = (
            await call(
                "subnetpool.create",
                ADMIN,
                subnetpool={
                    "name": "subnet-pool-ip4",
                    "prefixes": ["203.0.113.0/24"],
                    "default_prefixlen": 26,
                    "address_scope_id": str(s4.id),
                    "shared": True,
                },
            )
        ).subnetpool
        click.echo(
            show(
                p4.model_dump(mode="json"),
                [
                    "address_scope_id",
                    "default_prefixlen",
                    "ip_version",
                    "max_prefixlen",
                    "min_prefixlen",
                    "name",
                    "prefixes",
                    "shared",
                ],
            )
        )
        step("admin: public-subnet and ipv6-public-subnet from the pools (external network)")
        ext = uuid.uuid4()
        made: list[tuple[str, Any]] = []
        for name, pool, ctx, net in (("public-subnet", p4, ADMIN, ext), ("ipv6-public-subnet", p6, ADMIN, ext)):
            sub = (
                await call(
                    "subnet.allocate",
                    ctx,
                    subnet_id=str(uuid.uuid4()),
                    network_id=str(net),
                    project_id=ctx.project_id,
                    ip_version=pool.ip_version,
                    subnetpool_id=str(pool.id),
                )
            ).subnet
            made.append((name, sub))
        step("project: subnets of network1 (unscoped) and network2 (from the shared pools)")
        net1, net2 = uuid.uuid4(), uuid.uuid4()
        for name, cidr, version, net in (
            ("subnet-ip4-1", "198.51.100.0/26", 4, net1),
            ("subnet-ip6-1", "2001:db8:80d2:c4d3::/64", 6, net1),
        ):
            sub = (
                await call(
                    "subnet.allocate",
                    PROJECT,
                    subnet_id=str(uuid.uuid4()),
                    network_id=str(net),
                    project_id=PROJECT.project_id,
                    ip_version=version,
                    cidr=cidr,
                )
            ).subnet
            made.append((name, sub))
        for name, pool, net in (("subnet-ip4-2", p4, net2), ("subnet-ip6-2", p6, net2)):
            sub = (
                await call(
                    "subnet.allocate",
                    PROJECT,
                    subnet_id=str(uuid.uuid4()),
                    network_id=str(net),
                    project_id=PROJECT.project_id,
                    ip_version=pool.ip_version,
                    subnetpool_id=str(pool.id),
                )
            ).subnet
            made.append((name, sub))
        click.echo(
            grid(
                ["subnet", "cidr", "gateway_ip", "allocation_pools", "address scope"],
                [
                    (
                        n,
                        s.cidr,
                        s.gateway_ip,
                        [f"{p.start}-{p.end}" for p in s.allocation_pools],
                        {s4.id: "address-scope-ip4", s6.id: "address-scope-ip6"}.get(s.address_scope_id, "None"),
                    )
                    for n, s in made
                ],
            )
        )
        cidrs = {n: s.cidr for n, s in made}
        expected = {
            "public-subnet": "203.0.113.0/26",
            "ipv6-public-subnet": "2001:db8:a583::/64",
            "subnet-ip4-2": "203.0.113.64/26",
            "subnet-ip6-2": "2001:db8:a583:1::/64",
        }
        wrong = {n: (cidrs[n], c) for n, c in expected.items() if cidrs[n] != c}
        if wrong:
            ok = False
            click.secho(f"unexpected allocations: {wrong}", fg="red")
        step("project: a shared address scope is the admin's to create")
        try:
            await call("address_scope.create", PROJECT, address_scope={"name": "mine", "ip_version": 4, "shared": True})
            ok = False
            click.secho("a project created a shared address scope", fg="red")
        except DomainError as exc:
            click.echo(f"refused as expected: HTTP {exc.code} {exc.type}: {exc.message}")
        click.echo(
            "The datapath part (router, instances, pings) needs the topology, API and L3 agent services; "
            "this demo covers what exists: IPAM."
        )
    finally:
        await nc.drain()
    click.secho("demo: all outcomes matched" if ok else "demo: some outcomes differed", fg="green" if ok else "red")
    return ok
