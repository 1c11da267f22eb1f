"""Pure decisions about subnets that IPAM does not make: input checks (Neutron's messages and
types), who may create one on a network, which ports keep a subnet in use, gateway changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from netaddr import IPAddress

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput, NotAuthorized
from scopenet.policy.rules import not_found
from scopenet.services.topology import validate
from scopenet.services.topology.networks.rules import NetAccess, mtu_conflict

MAX_DNS_NAMESERVERS = 5
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def ipv6_modes(version: int, ra: str | None, address: str | None) -> None:
    if version == 4 and (ra or address):
        raise InvalidInput(
            "Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when "
            "enable_dhcp is set to False or ip_version is 4.",
            field="ipv6_ra_mode" if ra else "ipv6_address_mode",
        )
    if ra and address and ra != address:
        raise InvalidInput(
            f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
            f"'{address}' is not valid. If both attributes are set, they must be the same value.",
            field="ipv6_ra_mode",
        )


def dns_nameservers(servers: Sequence[str], version: int) -> list[str]:
    if len(servers) > MAX_DNS_NAMESERVERS:
        raise BadRequest(
            f"Unable to complete operation for subnet: the number of DNS nameservers exceeds the limit "
            f"{MAX_DNS_NAMESERVERS}.",
            type="DNSNameServersExhausted",
            field="dns_nameservers",
        )
    out: list[str] = []
    for s in servers:
        addr = validate.ip(s, "dns_nameservers")
        if str(addr) in out:
            raise InvalidInput(
                f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{s}'.", field="dns_nameservers"
            )
        out.append(str(addr))
    return out


def auto_address(subnet: Mapping[str, Any]) -> bool:
    """SLAAC or DHCPv6-stateless: hosts configure their own address from the prefix."""
    return subnet["ipv6_address_mode"] in AUTO_ADDRESS_MODES


@dataclass(frozen=True)
class NewSubnet:
    """A subnet create, validated: what its row holds before IPAM has decided."""

    id: uuid.UUID
    ctx: CallContext
    body: t.SubnetCreateBody
    owner: str
    dns: list[str]
    routes: list[dict[str, str]]

    @classmethod
    def validated(cls, *, id_: uuid.UUID, ctx: CallContext, body: t.SubnetCreateBody, owner: str) -> NewSubnet:
        ipv6_modes(body.ip_version, body.ipv6_ra_mode, body.ipv6_address_mode)
        return cls(
            id=id_,
            ctx=ctx,
            body=body,
            owner=owner,
            dns=dns_nameservers(body.dns_nameservers, body.ip_version),
            routes=validate.host_routes(body.host_routes, body.ip_version),
        )

    def allocate_request(self) -> im.SubnetAllocate:
        body = self.body
        fields: dict[str, Any] = {
            "context": self.ctx,
            "subnet_id": self.id,
            "network_id": body.network_id,
            "project_id": self.owner,
            "ip_version": body.ip_version,
            "enable_dhcp": body.enable_dhcp,
        }
        for key in ("subnetpool_id", "use_default_subnetpool", "cidr", "prefixlen", "gateway_ip", "allocation_pools"):
            if key in body.model_fields_set:
                fields[key] = getattr(body, key)
        return im.SubnetAllocate(**fields)

    def view(self, alloc: im.Subnet, now: datetime) -> t.Subnet:
        body = self.body
        return t.Subnet(
            id=self.id,
            name=body.name,
            network_id=body.network_id,
            project_id=self.owner,
            tenant_id=self.owner,
            ip_version=alloc.ip_version,
            cidr=alloc.cidr,
            subnetpool_id=alloc.subnetpool_id,
            gateway_ip=alloc.gateway_ip,
            allocation_pools=alloc.allocation_pools,
            enable_dhcp=body.enable_dhcp,
            ipv6_ra_mode=body.ipv6_ra_mode,
            ipv6_address_mode=body.ipv6_address_mode,
            dns_nameservers=self.dns,
            host_routes=[t.HostRoute(**r) for r in self.routes],
            service_types=list(body.service_types),
            description=body.description,
            tags=list(body.tags),
            revision_number=0,
            created_at=now,
            updated_at=now,
        )


def check_create(new: NewSubnet, net: NetAccess | None) -> None:
    """The caller sees the network and owns it (or is admin); the network's MTU fits the version."""
    ctx = new.ctx
    if net is None or not net.visible(ctx.project_id, ctx.is_admin):
        raise not_found("network", new.body.network_id, field="network_id")
    if not ctx.is_admin and net.project_id != ctx.project_id:
        raise NotAuthorized("rule:create_subnet is disallowed by policy", field="network_id")
    if (err := mtu_conflict(net.mtu, {new.body.ip_version})) is not None:
        raise err


def norm_ip(value: str | None) -> str | None:
    """An address in canonical form, to compare a requested gateway with the current one."""
    if value is None:
        return None
    try:
        return str(IPAddress(value))
    except Exception:
        return value


def gateway_changes(body: t.SubnetUpdateBody, current: str | None) -> bool:
    """Does the update move (or remove, or add) the gateway? A malformed one is refused first."""
    if "gateway_ip" not in body.model_fields_set:
        return False
    if body.gateway_ip is not None:
        validate.ip(body.gateway_ip, "gateway_ip")
    return norm_ip(body.gateway_ip) != current


def gateway_in_use(gateway: str, holder: uuid.UUID) -> Conflict:
    return Conflict(
        f"Gateway ip {gateway} conflicts with allocation pool or is in use by router port {holder}",
        type="GatewayIpInUse",
        field="gateway_ip",
    )


def holders(users: Iterable[Mapping[str, Any]], *, auto: bool) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(ports that keep the subnet in use, ports whose addresses on it just go with it).

    ``users``: the ports with an address on the subnet (``id``, ``device_owner``); ``auto``: the
    subnet is an automatic-address one. Rule 53: router interfaces, gateways, floating IPs and
    user ports block; DHCP ports and the automatic (SLAAC/DHCPv6-stateless) addresses of user ports
    do not."""
    blocking: list[uuid.UUID] = []
    going: list[uuid.UUID] = []
    for u in users:
        service = u["device_owner"].startswith("network:")
        if (service and u["device_owner"] != t.DEVICE_OWNER_DHCP) or (not service and not auto):
            blocking.append(u["id"])
        else:
            going.append(u["id"])
    return blocking, going


def in_use(subnet_id: uuid.UUID, count: int | None = None) -> Conflict:
    held = f" ({count} port(s))" if count else ""
    return Conflict(
        f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP allocation "
        f"from this subnet{held}.",
        type="SubnetInUse",
    )
