"""``reachability.explain``: resolve the two ends as the caller may see them, build the model from
the RouterSpecs of the routers around them, let the pure explainer decide
(``scopenet.datapath.reachability``), then ask the agent hosting the router for the deciding rule
and its counter.

Visibility follows the API: a port the caller cannot see is 404 as if unknown, and so is an address
in a subnet of a network the caller cannot see. Routers and networks on the path the caller cannot
see are named by id only. The kernel question has its own short timeout: no answer makes
``kernel`` null with the reason, never an error.
"""

from __future__ import annotations

import ipaddress
from uuid import UUID

import asyncpg
import structlog
from pydantic import ValidationError

from scopenet.contracts import agent_endpoints as aep
from scopenet.contracts import reachability as reach
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError, InvalidInput, NotFound, TransientError
from scopenet.datapath import reachability as rc
from scopenet.policy.rules import not_found
from scopenet.services.topology.bgp import speakerspecs
from scopenet.services.topology.bgp import store as bgpstore
from scopenet.services.topology.context import Deps
from scopenet.services.topology.reachability import store
from scopenet.services.topology.specs.service import build_specs
from scopenet.store.db import db_errors

KERNEL_TIMEOUT = 1.5
"""Seconds to wait for the agent's evidence (``Deps.agent_bus``'s timeout): the model's answer does
not wait longer for it."""

log = structlog.get_logger("topology.reachability")


class Reachability:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def explain(self, cmd: reach.ReachabilityExplain) -> reach.Reachability:
        ctx = cmd.context
        async with db_errors(), self.d.db.acquire() as conn:
            src = await _endpoint(conn, cmd.source, "source", ctx)
            dst = await _endpoint(conn, cmd.destination, "destination", ctx)
            model, visible = await self._model(conn, (src, dst), ctx)
        x = rc.explain(
            model, src, dst, protocol=cmd.protocol, destination_port=cmd.destination_port, family=cmd.ip_version
        )
        kernel, why = await self._kernel(x.decision, ctx) if cmd.kernel else (None, "not asked for")
        return reach.Reachability(
            verdict=x.verdict,
            ip_version=x.family,
            source_ip=x.source,
            destination_ip=x.destination,
            translated_source=x.translated_source,
            translated_destination=x.translated_destination,
            hops=[
                reach.ReachabilityHop(kind=h.kind, id=h.id, name=h.name if h.id is None or h.id in visible else "")
                for h in x.hops
            ],
            reasons=[reach.ReachabilityReason(code=r.code, message=r.message, blocking=r.blocking) for r in x.reasons],
            kernel=kernel,
            kernel_reason=why,
            fix=list(x.fix),
        )

    async def _model(
        self, conn: asyncpg.Connection, ends: tuple[rc.Endpoint, rc.Endpoint], ctx: CallContext
    ) -> tuple[rc.Model, set[UUID]]:
        nets = [e.network_id for e in ends if e.network_id is not None]
        addresses = [a for e in ends for a in e.addresses]
        rows = await store.router_rows(conn, await store.routers_around(conn, nets, addresses))
        specs = await build_specs(conn, [r for r, _, _ in rows])
        meta = {r.id: (name, project) for r, name, project in rows}
        routers = [rc.Router(spec=s, name=meta[s.router_id][0]) for s in specs]
        net_ids = set(nets)
        for s in specs:
            net_ids |= {p.network_id for p in (s.gateway, *s.interfaces) if p is not None}
        net_rows = await store.networks(conn, sorted(net_ids))
        sub_rows = await store.subnets(conn, sorted(net_ids))
        inner = [f.fixed_ip_address for s in specs for f in s.floating_ips]
        inner += [p.internal_ip_address for s in specs for p in s.port_forwardings]
        ports = {p.id: _model_port(p) for p in await store.ports_at(conn, inner)}
        ports |= {e.port.id: e.port for e in ends if e.port is not None}
        visible = {s.router_id for s in specs if ctx.is_admin or meta[s.router_id][1] == ctx.project_id}
        for n in net_rows:
            if await store.network_visible(conn, n["id"], project=ctx.project_id, admin=ctx.is_admin):
                visible.add(n["id"])
        visible |= {e.port.id for e in ends if e.port is not None}
        pool_ids = {s["subnetpool_id"] for s in sub_rows if s["subnetpool_id"] is not None}
        scope_ids = {s["address_scope_id"] for s in sub_rows if s["address_scope_id"] is not None}
        for s in specs:
            ifaces = [p for p in (s.gateway, *s.interfaces) if p is not None]
            scope_ids |= {sc.id for p in ifaces for sc in (p.scope_v4, p.scope_v6) if sc.id is not None}
            scope_ids |= {f.fixed_scope.id for f in s.floating_ips if f.fixed_scope.id is not None}
        pools, scopes = await self._names(pool_ids, scope_ids)
        speakers = await bgpstore.speakers(conn)
        # BGP in the model only where it is used: with no speaker at all, no NOT_ANNOUNCED notes.
        announced: frozenset[str] | None = None
        if speakers:
            routes = [r.destination for sp in speakers for r in await speakerspecs.compute(conn, sp)]
            announced = frozenset(routes)
        model = rc.Model(
            routers=routers,
            networks={n["id"]: rc.Network(n["id"], n["name"], n["router_external"]) for n in net_rows},
            subnets=[
                rc.Subnet(
                    s["id"],
                    s["network_id"],
                    str(s["cidr"]),
                    str(s["gateway_ip"]) if s["gateway_ip"] is not None else None,
                    s["subnetpool_id"],
                    s["name"],
                )
                for s in sub_rows
            ],
            pools={
                s["subnetpool_id"]: rc.Pool(
                    s["subnetpool_id"],
                    pools.get(s["subnetpool_id"], str(s["subnetpool_id"])),
                    s["ip_version"],
                    s["address_scope_id"],
                )
                for s in sub_rows
                if s["subnetpool_id"] is not None
            },
            scopes=scopes,
            ports=list(ports.values()),
            announced=announced,
        )
        return model, visible

    async def _names(self, pool_ids: set[UUID], scope_ids: set[UUID]) -> tuple[dict[UUID, str], dict[UUID, str]]:
        """The names of the pools and scopes on the path, from IPAM (the mirror keeps ids only);
        ids stand in if IPAM is away."""
        try:
            pools = {p.id: p.name or str(p.id) for p in await self.d.ipam.pools(pool_ids)} if pool_ids else {}
            scopes = {s.id: s.name or str(s.id) for s in await self.d.ipam.scopes(scope_ids)} if scope_ids else {}
        except (DomainError, TransientError) as exc:
            log.warning("reachability_names_unavailable", error=str(exc))
            return {}, {}
        return pools, scopes

    async def _kernel(
        self, decision: rc.Decision | None, ctx: CallContext
    ) -> tuple[reach.KernelEvidence | None, str | None]:
        if decision is None:
            return None, "no router rule decides this path"
        if not decision.agent_id:
            return None, "no L3 agent hosts the router"
        if self.d.agent_bus is None:
            return None, "topology has no connection to the agents"
        try:
            query = reach.KernelRuleQuery(
                context=ctx,
                agent_id=decision.agent_id,
                router_id=decision.router_id,
                chain=decision.chain,
                contains=list(decision.contains),
                excludes=list(decision.excludes),
                counter=decision.counter,
            )
            rule = await self.d.agent_bus.call(aep.KERNEL_RULE, query)
        except (DomainError, TransientError, ValidationError) as exc:
            log.info("kernel_evidence_unavailable", agent_id=decision.agent_id, error=str(exc))
            return None, f"agent {decision.agent_id} did not answer: {getattr(exc, 'message', exc)}"
        if not rule.present:
            return None, f"agent {decision.agent_id} has no table for the router in {rule.namespace}"
        evidence = reach.KernelEvidence(
            agent_id=decision.agent_id,
            namespace=rule.namespace,
            table=rule.table,
            chain=decision.chain,
            rule=rule.rule,
            handle=rule.handle,
            counter=decision.counter,
            packets=rule.packets,
            outcome=decision.outcome,
        )
        return (
            evidence,
            None if rule.rule is not None else "the rule is not in the kernel yet (the table lags the spec)",
        )


async def _endpoint(conn: asyncpg.Connection, text: str, field: str, ctx: CallContext) -> rc.Endpoint:
    """A port id (404 unless visible) or an IP address (404 in a subnet the caller cannot see)."""
    try:
        port_id: UUID | None = UUID(text)
    except ValueError:
        port_id = None
    if port_id is not None:
        port = await store.visible_port(conn, port_id, project=ctx.project_id, admin=ctx.is_admin)
        if port is None:
            raise not_found("port", port_id, field=field)
        ips = tuple(str(ipaddress.ip_address(i.ip_address)) for i in port.fixed_ips)
        return rc.Endpoint("port", ips, _model_port(port), port.network_id)
    try:
        ip = str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidInput(f"{field} {text!r} is neither a port id nor an IP address", field=field) from None
    holder = await store.port_at(conn, ip)
    if holder is not None:
        port = await store.visible_port(conn, holder, project=ctx.project_id, admin=ctx.is_admin)
        if port is not None:
            return rc.Endpoint("port", (ip,), _model_port(port), port.network_id)
    subnet = await store.subnet_at(conn, ip)
    if subnet is None:
        return rc.Endpoint("external", (ip,))
    if not await store.network_visible(conn, subnet["network_id"], project=ctx.project_id, admin=ctx.is_admin):
        raise NotFound(f"Address {ip} could not be found.", field=field)
    return rc.Endpoint("host", (ip,), None, subnet["network_id"])


def _model_port(p: t.Port) -> rc.Port:
    return rc.Port(
        id=p.id,
        network_id=p.network_id,
        fixed_ips=tuple(str(ipaddress.ip_address(i.ip_address)) for i in p.fixed_ips),
        name=p.name,
        admin_state_up=p.admin_state_up,
        device_owner=p.device_owner,
    )
