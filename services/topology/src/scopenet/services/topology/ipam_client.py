"""Topology's calls to IPAM, over NATS only (never its tables).

Allocations are made with the caller's ``CallContext`` (IPAM decides pool visibility for the
caller); releases and the reconciler's listings use the service's own admin context. Every call
here is idempotent on IPAM's side (by subnet id, by port id), which is what lets a saga step or
the reconciler repeat it after a crash.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar
from uuid import UUID

from scopenet.bus.client import BusClient
from scopenet.contracts import ipam as m
from scopenet.contracts import ipam_endpoints as ep
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, ErrorBody, ListCommand, PagedListCommand
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import DomainError, TransientError, from_reply

#: Who topology is when it acts on its own behalf (releases, the reconciler, the mirror fill).
SYSTEM = CallContext(project_id="scopenet-topology", roles=["admin"])

#: Items per page when the reconciler reads IPAM's lists (a page of subnets is ~0.25 MB of JSON,
#: one of addresses (4 * PAGE) ~0.3 MB: well under NATS's default 1 MB max payload).
PAGE = 500

#: A paged list reply (``limit``/``marker``).
Page = TypeVar("Page", m.SubnetList, m.IpAllocationList)


class IpamClient:
    def __init__(self, bus: BusClient) -> None:
        self.bus = bus

    async def allocate_subnet(self, request: m.SubnetAllocate) -> m.Subnet:
        return (await self.bus.call(ep.SUBNET_ALLOCATE, request)).subnet

    async def allocate_subnets(self, requests: list[m.SubnetAllocate]) -> list[m.Subnet | DomainError | TransientError]:
        """``subnet.allocate`` for each request (its own context), in as few messages as fit."""
        out: list[m.Subnet | DomainError | TransientError] = []
        for chunk in _chunks(requests):
            reply = await self.bus.call(ep.SUBNET_ALLOCATE_MANY, m.SubnetAllocateMany(context=SYSTEM, requests=chunk))
            out += [r.subnet if r.subnet is not None else _error(r.error) for r in reply.results]
        return out

    async def update_subnet(
        self, ctx: CallContext, subnet_id: UUID, *, gateway: tuple[bool, str | None], pools: list[Any] | None
    ) -> m.Subnet:
        """``gateway``: (given, value); absent keeps IPAM's gateway, ``(True, None)`` removes it."""
        body: dict[str, Any] = {"context": ctx, "id": subnet_id}
        if gateway[0]:
            body["gateway_ip"] = gateway[1]
        if pools is not None:
            body["allocation_pools"] = pools
        return (await self.bus.call(ep.SUBNET_UPDATE, m.SubnetUpdate(**body))).subnet

    async def onboard(self, ctx: CallContext, pool_id: UUID, network_id: UUID) -> m.OnboardReply:
        """Idempotent: a repeated onboard changes nothing and answers the same."""
        cmd = m.SubnetPoolOnboard(context=ctx, id=pool_id, network_id=network_id)
        return await self.bus.call(ep.SUBNETPOOL_ONBOARD_NETWORK_SUBNETS, cmd)

    async def release_subnet(self, subnet_id: UUID, ctx: CallContext | None = None) -> None:
        """``ctx``: whoever deleted the subnet, for the pool's history (IPAM's release checks no
        policy); the service itself when it compensates or reconciles."""
        await self.bus.call(ep.SUBNET_RELEASE, DeleteCommand(context=ctx or SYSTEM, id=subnet_id))

    async def get_subnet(self, subnet_id: UUID) -> m.Subnet:
        return (await self.bus.call(ep.SUBNET_GET, ByIdCommand(context=SYSTEM, id=subnet_id))).subnet

    async def subnets(self, **filters: Any) -> list[m.Subnet]:
        """Every subnet allocation (matching ``filters``), read page by page."""
        return [s for page in await self._pages(ep.SUBNET_LIST, filters, PAGE) for s in page.subnets]

    async def allocate_ip(
        self, ctx: CallContext, *, subnet_id: UUID, port_id: UUID, ip_address: str | None
    ) -> m.IpAllocation:
        return (await self.bus.call(ep.IP_ALLOCATE, ip_request(ctx, subnet_id, port_id, ip_address))).allocation

    async def allocate_ips(self, requests: list[m.IpAllocate]) -> list[m.IpAllocation | DomainError | TransientError]:
        """``ip.allocate`` for each request, in order, in as few messages as fit."""
        out: list[m.IpAllocation | DomainError | TransientError] = []
        for chunk in _chunks(requests):
            reply = await self.bus.call(ep.IP_ALLOCATE_MANY, m.IpAllocateMany(context=SYSTEM, requests=chunk))
            out += [r.allocation if r.allocation is not None else _error(r.error) for r in reply.results]
        return out

    async def release_ips(
        self, port_id: UUID, *, subnet_id: UUID | None = None, ip_address: str | None = None
    ) -> list[m.IpAllocation]:
        body: dict[str, Any] = {"context": SYSTEM, "port_id": port_id}
        if subnet_id is not None:
            body["subnet_id"] = subnet_id
        if ip_address is not None:
            body["ip_address"] = ip_address
        return (await self.bus.call(ep.IP_RELEASE, m.IpRelease(**body))).allocations

    async def ips(self, **filters: Any) -> list[m.IpAllocation]:
        """Every address allocation (matching ``filters``), read page by page."""
        return [a for page in await self._pages(ep.IP_LIST, filters, PAGE * 4) for a in page.allocations]

    async def _pages(
        self, endpoint: Endpoint[PagedListCommand, Page], filters: dict[str, Any], limit: int
    ) -> list[Page]:
        """All pages of a paged list; a page too large for the server's max payload is asked again
        with half the limit (a server configured below NATS's default 1 MB)."""
        pages: list[Page] = []
        marker: str | None = None
        while True:
            cmd = PagedListCommand(context=SYSTEM, filters=_filters(filters), limit=limit, marker=marker)
            try:
                page = await self.bus.call(endpoint, cmd)
            except DomainError as exc:
                if exc.type != "ReplyTooLarge" or limit == 1:
                    raise
                limit //= 2
                continue
            pages.append(page)
            if (marker := page.next_marker) is None:
                return pages

    async def pools(self, ids: Collection[UUID] | None = None) -> list[m.SubnetPool]:
        """Every pool, or those of ``ids``."""
        cmd = ListCommand(context=SYSTEM, filters=_filters({"id": list(ids)}) if ids is not None else {})
        return (await self.bus.call(ep.SUBNETPOOL.list, cmd)).subnetpools

    async def scopes(self, ids: Collection[UUID] | None = None) -> list[m.AddressScope]:
        """Every address scope, or those of ``ids``."""
        cmd = ListCommand(context=SYSTEM, filters=_filters({"id": list(ids)}) if ids is not None else {})
        return (await self.bus.call(ep.ADDRESS_SCOPE.list, cmd)).address_scopes

    async def scope(self, scope_id: UUID) -> m.AddressScope:
        return (await self.bus.call(ep.ADDRESS_SCOPE.get, ByIdCommand(context=SYSTEM, id=scope_id))).address_scope


def ip_request(ctx: CallContext, subnet_id: UUID, port_id: UUID, ip_address: str | None) -> m.IpAllocate:
    body: dict[str, Any] = {"context": ctx, "subnet_id": subnet_id, "port_id": port_id}
    if ip_address is not None:
        body["ip_address"] = ip_address
    return m.IpAllocate(**body)


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Ids as strings (one, or a list of them), as the list commands take them."""
    return {k: [str(x) for x in v] if isinstance(v, list | set | tuple) else str(v) for k, v in filters.items()}


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + m.MAX_BATCH] for i in range(0, len(items), m.MAX_BATCH)]


def _error(body: ErrorBody | None) -> DomainError | TransientError:
    if body is None:  # neither result nor error: a reply this client does not understand
        return TransientError("IPAM answered a batch request without a result")
    return from_reply(body.code, body.type, body.message, body.field)
