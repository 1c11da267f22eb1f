"""Topology's calls to IPAM, over NATS only (never its tables).

Allocations are made with the caller's ``CallContext`` (IPAM decides pool visibility for the
caller); releases and the reconciler's listings use the service's own admin context. Every call
here is idempotent on IPAM's side (by subnet id, by port id), which is what lets a saga step or
the reconciler repeat it after a crash.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from scopenet.bus.client import BusClient
from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, ListCommand
from scopenet.contracts.subjects import IPAM_ENDPOINTS, Endpoint

#: Who topology is when it acts on its own behalf (releases, the reconciler, the mirror fill).
SYSTEM = CallContext(project_id="scopenet-topology", roles=["admin"])

_EP: dict[str, Endpoint] = {f"{ep.resource}.{ep.verb}": ep for ep in IPAM_ENDPOINTS}


class IpamClient:
    def __init__(self, bus: BusClient) -> None:
        self.bus = bus

    async def _call(self, name: str, request: Any) -> Any:
        return await self.bus.call(_EP[name], request)

    async def allocate_subnet(self, request: m.SubnetAllocate) -> m.Subnet:
        reply: m.SubnetReply = await self._call("subnet.allocate", request)
        return reply.subnet

    async def update_subnet(
        self, ctx: CallContext, subnet_id: UUID, *, gateway: tuple[bool, str | None], pools: list[Any] | None
    ) -> m.Subnet:
        """``gateway``: (given, value); absent keeps IPAM's gateway, ``(True, None)`` removes it."""
        body: dict[str, Any] = {"context": ctx, "id": subnet_id}
        if gateway[0]:
            body["gateway_ip"] = gateway[1]
        if pools is not None:
            body["allocation_pools"] = pools
        reply: m.SubnetReply = await self._call("subnet.update", m.SubnetUpdate(**body))
        return reply.subnet

    async def release_subnet(self, subnet_id: UUID) -> None:
        await self._call("subnet.release", DeleteCommand(context=SYSTEM, id=subnet_id))

    async def get_subnet(self, subnet_id: UUID) -> m.Subnet:
        reply: m.SubnetReply = await self._call("subnet.get", ByIdCommand(context=SYSTEM, id=subnet_id))
        return reply.subnet

    async def subnets(self) -> list[m.Subnet]:
        reply: m.SubnetList = await self._call("subnet.list", ListCommand(context=SYSTEM))
        return reply.subnets

    async def allocate_ip(
        self, ctx: CallContext, *, subnet_id: UUID, port_id: UUID, ip_address: str | None
    ) -> m.IpAllocation:
        body: dict[str, Any] = {"context": ctx, "subnet_id": subnet_id, "port_id": port_id}
        if ip_address is not None:
            body["ip_address"] = ip_address
        reply: m.IpAllocationReply = await self._call("ip.allocate", m.IpAllocate(**body))
        return reply.allocation

    async def release_ips(
        self, port_id: UUID, *, subnet_id: UUID | None = None, ip_address: str | None = None
    ) -> list[m.IpAllocation]:
        body: dict[str, Any] = {"context": SYSTEM, "port_id": port_id}
        if subnet_id is not None:
            body["subnet_id"] = subnet_id
        if ip_address is not None:
            body["ip_address"] = ip_address
        reply: m.IpAllocationList = await self._call("ip.release", m.IpRelease(**body))
        return reply.allocations

    async def ips(self, **filters: Any) -> list[m.IpAllocation]:
        cmd = ListCommand(context=SYSTEM, filters={k: str(v) for k, v in filters.items()})
        reply: m.IpAllocationList = await self._call("ip.list", cmd)
        return reply.allocations

    async def pools(self) -> list[m.SubnetPool]:
        reply: m.SubnetPoolList = await self._call("subnetpool.list", ListCommand(context=SYSTEM))
        return reply.subnetpools

    async def scopes(self) -> list[m.AddressScope]:
        reply: m.AddressScopeList = await self._call("address_scope.list", ListCommand(context=SYSTEM))
        return reply.address_scopes

    async def scope(self, scope_id: UUID) -> m.AddressScope:
        reply: m.AddressScopeReply = await self._call("address_scope.get", ByIdCommand(context=SYSTEM, id=scope_id))
        return reply.address_scope
