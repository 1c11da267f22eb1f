"""Pure decisions about networks: who may set which attribute, MTU bounds, who sees a network."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from uuid import UUID

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, InvalidInput
from scopenet.policy.rules import require_admin_for

IPV4_MIN_MTU = 68
IPV6_MIN_MTU = 1280


def check_mtu_max(mtu: int) -> None:
    if mtu > t.MAX_MTU:
        raise InvalidInput(
            f"Invalid input for operation: Requested MTU is too big, maximum is {t.MAX_MTU}.", field="mtu"
        )


def mtu_conflict(mtu: int, versions: Set[int]) -> Conflict | None:
    """Rule 50: IPv4 needs an MTU of at least 68, IPv6 at least 1280."""
    if (4 in versions and mtu < IPV4_MIN_MTU) or (6 in versions and mtu < IPV6_MIN_MTU):
        need = IPV6_MIN_MTU if 6 in versions and mtu < IPV6_MIN_MTU else IPV4_MIN_MTU
        return Conflict(
            f"MTU of the network ({mtu}) is too small for its subnets' IP version (at least {need}).",
            type="NetworkMTUSubnetConflict",
        )
    return None


def check_create(ctx: CallContext, body: t.NetworkCreateBody) -> None:
    """The admin-only attributes of a create."""
    if body.shared:
        require_admin_for(ctx, "shared", "create_network")
    if body.router_external:
        require_admin_for(ctx, "router:external", "create_network")
    if body.model_fields_set & {"provider_network_type", "provider_segmentation_id"}:
        require_admin_for(ctx, "provider:segmentation_id", "create_network")


def create_mtu(body: t.NetworkCreateBody) -> int:
    """The MTU a new network gets."""
    mtu = body.mtu if body.mtu is not None else t.DEFAULT_MTU
    check_mtu_max(mtu)
    return mtu


def check_update(ctx: CallContext, body: t.NetworkUpdateBody, given: Set[str]) -> None:
    """The admin-only attributes of an update (``given``: the attributes set to a value)."""
    if "shared" in given:
        require_admin_for(ctx, "shared", "update_network")
    if "router_external" in given:
        require_admin_for(ctx, "router:external", "update_network")
    if "mtu" in given and body.mtu is not None:
        check_mtu_max(body.mtu)


def in_use(network_id: UUID, ports: int | None = None) -> Conflict:
    """A delete refused: user ports (counted) or, on the second look, ports or subnets remain."""
    if ports is not None:
        return Conflict(
            f"Unable to complete operation on network {network_id}. There are one or more ports still in use "
            f"on the network ({ports} port(s)).",
            type="NetworkInUse",
        )
    return Conflict(
        f"Unable to complete operation on network {network_id}. There are one or more ports or subnets "
        "still in use on the network.",
        type="NetworkInUse",
    )


@dataclass(frozen=True)
class NetAccess:
    """What a create needs to know about a network for a caller: ownership, MTU and RBAC entries
    (the visibility rule of ``networks.store`` decided in Python, so one query serves a whole batch)."""

    id: UUID
    project_id: str
    mtu: int
    rbac: tuple[tuple[str, str], ...]
    """(action, target project)"""

    def visible(self, project: str, admin: bool) -> bool:
        return admin or self.project_id == project or any(target in ("*", project) for _, target in self.rbac)

    def shared(self, project: str) -> bool:
        return any(a == "access_as_shared" and target in ("*", project) for a, target in self.rbac)
