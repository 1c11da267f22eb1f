"""What "converged" means after faults, checked exactly (each check: empty = agreed).

- ``databases``: IPAM and topology agree. Every topology subnet has IPAM's subnet with the same
  id, network and cidr, and IPAM has no subnet on topology's networks that topology lacks; every
  address a port holds in IPAM's name is held by that port in topology and the reverse (no
  orphaned allocation); a router interface's address (taken without an IPAM allocation) is its
  subnet's gateway as IPAM has it; a floating IP's address is its floating port's; no row is left
  half-way in a saga; topology's mirror of IPAM's pools has the same scopes.
- ``router_specs``: for every router, the last RouterSpec on ``SCOPENET_ROUTERS`` equals the spec
  topology builds from its database now (``router.spec``), and every other router subject ends
  with a removal.
- ``kernel``: for every router the agent has, the plan from its spec to what the kernel holds is
  empty (links, addresses, routes, sysctls, and an nftables table whose listing is identical to the
  same ruleset written once into a scratch namespace); no other router namespace exists; the host
  namespace holds exactly the bridges and veth ends those routers need.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.contracts import routerspec as rs
from scopenet.datapath import desired_state, plan
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import Topo
from tests.netns.stack import reference_fingerprint


async def databases(db: asyncpg.Connection) -> dict[str, Any]:
    networks = [r["id"] for r in await db.fetch("SELECT id FROM topology.networks")]
    t_sub = {
        r["id"]: (r["network_id"], str(r["cidr"]))
        for r in await db.fetch("SELECT id, network_id, cidr FROM topology.subnets WHERE state = 'active'")
    }
    i_sub = {
        r["id"]: (r["network_id"], str(r["cidr"]), r["gateway_ip"])
        for r in await db.fetch(
            "SELECT id, network_id, cidr, gateway_ip FROM ipam.subnets WHERE network_id = ANY($1::uuid[])", networks
        )
    }
    t_ips = {
        (r["port_id"], r["subnet_id"], str(r["ip_address"]))
        for r in await db.fetch("SELECT port_id, subnet_id, ip_address FROM topology.port_ips WHERE ipam_held")
    }
    i_ips = {
        (r["port_id"], r["subnet_id"], str(r["ip_address"]))
        for r in await db.fetch(
            "SELECT port_id, subnet_id, ip_address FROM ipam.ip_allocations WHERE subnet_id = ANY($1::uuid[])",
            list(i_sub),
        )
    }
    gateway_taken = await db.fetch(
        "SELECT port_id, subnet_id, ip_address FROM topology.port_ips WHERE NOT ipam_held ORDER BY port_id"
    )
    fips = await db.fetch(
        """SELECT f.id FROM topology.floatingips f JOIN topology.port_ips i ON i.port_id = f.floating_port_id
           WHERE f.floating_ip_address IS DISTINCT FROM i.ip_address"""
    )
    unsettled = await db.fetch(
        """SELECT 'subnet' AS kind, id, state FROM topology.subnets WHERE state <> 'active'
           UNION ALL SELECT 'port', id, state FROM topology.ports WHERE state <> 'active'
           UNION ALL SELECT 'router', id, state FROM topology.routers WHERE state <> 'active'"""
    )
    pools_t = {(r["id"], r["address_scope_id"]) for r in await db.fetch("SELECT * FROM topology.subnetpools")}
    pools_i = {(r["id"], r["address_scope_id"]) for r in await db.fetch("SELECT * FROM ipam.subnetpools")}
    out = {
        "unsettled_rows": [(r["kind"], str(r["id"]), r["state"]) for r in unsettled],
        "subnet_without_allocation": sorted(str(s) for s in t_sub.keys() - i_sub.keys()),
        "allocation_without_subnet": sorted(str(s) for s in i_sub.keys() - t_sub.keys()),
        "subnet_mismatch": sorted(str(s) for s in t_sub.keys() & i_sub.keys() if t_sub[s] != i_sub[s][:2]),
        "address_without_allocation": sorted(map(str, t_ips - i_ips)),
        "allocation_without_owner": sorted(map(str, i_ips - t_ips)),
        "interface_not_on_gateway": [
            str(r["port_id"])
            for r in gateway_taken
            if r["subnet_id"] not in i_sub or i_sub[r["subnet_id"]][2] != r["ip_address"]
        ],
        "floating_ip_not_its_ports": [str(r["id"]) for r in fips],
        "pool_mirror_differs": sorted(map(str, pools_t ^ pools_i)),
    }
    return {k: v for k, v in out.items() if v}


async def router_specs(js: JetStreamContext, topo: Topo, db: asyncpg.Connection) -> dict[str, Any]:
    """Stream against database, for every router subject on the stream and every scheduled router."""
    info = await js.stream_info(rs.ROUTERS_STREAM, subjects_filter=">")
    subjects = set((info.state.subjects or {}).keys())
    routers = {r["id"]: r["agent_id"] for r in await db.fetch("SELECT id, agent_id FROM topology.routers")}
    out: dict[str, list[str]] = {"stale": [], "missing": [], "not_removed": [], "unscheduled": []}
    for rid, agent in routers.items():
        if agent is None:
            out["unscheduled"].append(str(rid))
            continue
        subject = rs.router_subject(agent, rid)
        subjects.discard(subject)
        try:
            msg = await js.get_last_msg(rs.ROUTERS_STREAM, subject)
        except NotFoundError:
            out["missing"].append(str(rid))
            continue
        last = rs.RouterSpec.model_validate_json(msg.data)
        now = await topo("router.spec", ADMIN, id=str(rid))
        if last != now:
            out["stale"].append(f"{rid}: stream revision {last.revision}, database {now.revision}")
    for subject in sorted(subjects):  # a router that is gone, or moved: its last word is "remove"
        last = rs.RouterSpec.model_validate_json((await js.get_last_msg(rs.ROUTERS_STREAM, subject)).data)
        if last.present:
            out["not_removed"].append(subject)
    return {k: v for k, v in out.items() if v}


async def kernel(box: AgentSandbox, topo: Topo, db: asyncpg.Connection, *, owner: str) -> dict[str, Any]:
    rows = await db.fetch("SELECT id FROM topology.routers WHERE agent_id = $1 AND admin_state_up", owner)
    wanted_routers = sorted(str(r["id"]) for r in rows)
    out: dict[str, Any] = {}
    have = await box.kernel.routers()
    if have != wanted_routers:
        out["router_namespaces"] = {"extra": sorted(set(have) - set(wanted_routers)), "missing": []}
        out["router_namespaces"]["missing"] = sorted(set(wanted_routers) - set(have))
    links = {"lo"}
    drift: dict[str, list[str]] = {}
    for rid in wanted_routers:
        desired = desired_state(await topo("router.spec", ADMIN, id=rid), owner=owner)
        if desired is None:
            continue
        links |= {v.peer for v in desired.veths} | set(desired.bridges)
        desired = dataclasses.replace(desired, nft_fingerprint=await reference_fingerprint(box, desired.nft.text))
        if steps := plan(desired, await box.kernel.observe(rid, desired)).describe():
            drift[rid] = steps
    if drift:
        out["drift"] = drift
    assert box.kernel.host_ipr is not None
    host = {m.get("ifname") async for m in await box.kernel.host_ipr.link("dump")}
    if host != links:
        out["host_links"] = {"extra": sorted(host - links), "missing": sorted(links - host)}
    return out
