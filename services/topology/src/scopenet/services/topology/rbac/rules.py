"""Pure decisions about network RBAC entries: who may write one, and when one may not go.

Rule 65 for networks: an entry cannot go while a project it lets in still depends on it (ports or
subnets on a shared network; router gateways or floating IPs on an external one), unless another
entry keeps that project in.
"""

from __future__ import annotations

from collections.abc import Set
from uuid import UUID

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, InvalidInput, NotAuthorized


def check_target(ctx: CallContext, target: str, action: str) -> None:
    """Only admins let everyone in (``action``: ``create`` or ``update``)."""
    if target == "*" and not ctx.is_admin:
        raise NotAuthorized(f"rule:{action}_rbac_policy:target_tenant is disallowed by policy", field="target_tenant")


def check_network_owner(ctx: CallContext, network_owner: str) -> None:
    if network_owner != ctx.project_id and not ctx.is_admin:
        raise InvalidInput("Only admins can manipulate policies on objects they do not own", field="object_id")


def losing_projects(*, target: str, owner: str, network_owner: str, others: Set[str], dependants: Set[str]) -> set[str]:
    """The projects that would lose access to a network if the entry for ``target`` went.

    ``owner``: the entry's project; ``others``: the targets of the network's other entries with
    the same action; ``dependants``: projects with something on the network that needs that access."""
    if target == owner or (target != "*" and "*" in others):
        return set()
    left = set(dependants) - {owner, network_owner}
    return left - others if target == "*" else left & {target}


def removal_conflict(network_id: UUID, losing: Set[str]) -> Conflict | None:
    if not losing:
        return None
    return Conflict(
        f"RBAC policy on object {network_id} cannot be removed because other objects depend on it: "
        f"project(s) {', '.join(sorted(losing))}",
        type="RbacPolicyInUse",
    )
