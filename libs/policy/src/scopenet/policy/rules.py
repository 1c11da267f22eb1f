"""Who may see and change what: Neutron's default policy (docs/neutron.md#policy), shared by the services.

Pure: the services load the rows and ask. Visibility itself (owner, admin, RBAC) is answered by
each service's SQL, where the rows are.
"""

from __future__ import annotations

import uuid

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, NotAuthorized, NotFound, PreconditionFailed


def owner_for_create(ctx: CallContext, project_id: str | None, tenant_id: str | None) -> str:
    """The project a new resource belongs to (rule 5: only admin may name another project)."""
    if project_id and tenant_id and project_id != tenant_id:
        raise BadRequest("project_id and tenant_id do not match", field="project_id")
    wanted = project_id or tenant_id or ctx.project_id
    if wanted != ctx.project_id and not ctx.is_admin:
        raise BadRequest(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project "
            "in request requires admin privileges",
            field="project_id",
        )
    return wanted


def require_admin_for(ctx: CallContext, attribute: str, action: str) -> None:
    if not ctx.is_admin:
        raise NotAuthorized(f"(rule:{action}:{attribute}) is disallowed by policy", field=attribute)


def require_owner(ctx: CallContext, owner: str, action: str, resource: str) -> None:
    """Update/delete: the owner's members or admin (rule 6: 403 when the caller can read it)."""
    if not (ctx.is_admin or owner == ctx.project_id):
        raise NotAuthorized(f"rule:{action}_{resource} is disallowed by policy")


def check_revision(wanted: int | None, current: int) -> None:
    """``If-Match: revision_number=N`` (docs/neutron.md#revision-numbers): compare-and-swap or 412."""
    if wanted is not None and wanted != current:
        raise PreconditionFailed(f"Constrained to {wanted}, but current revision is {current}")


def rbac_target(value: str | None, alt: str | None) -> str:
    """An RBAC entry's target: a project id (UUID) or ``*`` (rule 63: anything else is 400)."""
    target = value or alt
    if not target:
        raise BadRequest(
            "Failed to parse request. Required attribute 'target_tenant' not specified", field="target_tenant"
        )
    if target != "*":
        try:
            uuid.UUID(target)
        except ValueError:
            raise BadRequest(
                f"Invalid input for target_tenant. Reason: '{target}' is neither a UUID nor '*'.", field="target_tenant"
            ) from None
    return target


_NOT_FOUND = {
    "address_scope": ("AddressScopeNotFound", "Address scope {} could not be found."),
    "subnetpool": ("SubnetPoolNotFound", "Subnet pool {} could not be found."),
    "network": ("NetworkNotFound", "Network {} could not be found."),
    "subnet": ("SubnetNotFound", "Subnet {} could not be found."),
    "port": ("PortNotFound", "Port {} could not be found."),
    "router": ("RouterNotFound", "Router {} could not be found."),
    "floatingip": ("FloatingIPNotFound", "Floating IP {} could not be found."),
    "rbac_policy": ("RbacPolicyNotFound", "RBAC policy with id {} could not be found."),
}


def not_found(kind: str, id_: object, field: str | None = None) -> NotFound:
    """Neutron's NotFound for the kind (also for what the caller may not see: 404, never 403)."""
    type_, text = _NOT_FOUND[kind]
    return NotFound(text.format(id_), type=type_, field=field)
