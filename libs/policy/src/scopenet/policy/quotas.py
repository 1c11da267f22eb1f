"""Neutron's quota rules (docs/neutron.md#quotas), pure: who may read and change limits, how many
of a batch of creates fit, and which new limit is refused.

The services hold the counts and the locks; they ask these functions what to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, NotAuthorized, NotFound
from scopenet.contracts.quotas import UNLIMITED


def require_reader(ctx: CallContext, project_id: str) -> None:
    """A project reads its own quotas; only admin reads another's (Neutron's ``quota_details``
    rule, applied to every read: a limit says nothing another project could not learn, but its
    usage does)."""
    if not ctx.is_admin and project_id != ctx.project_id:
        raise NotAuthorized(
            "User does not have admin privileges: Only admin is authorized to access quotas for another project.",
            type="AdminRequired",
        )


def require_admin(ctx: CallContext, action: str) -> None:
    """Listing, setting and deleting limits is admin's (``rule:update_quota``, ``rule:delete_quota``)."""
    if not ctx.is_admin:
        raise NotAuthorized(f"rule:{action}_quota is disallowed by policy")


def effective(defaults: Mapping[str, int], overrides: Mapping[str, int]) -> dict[str, int]:
    """The limits a project has: its own where it set one, the default elsewhere."""
    return {name: overrides.get(name, default) for name, default in defaults.items()}


def granted(limit: int, used: int, asked: int) -> int:
    """How many of ``asked`` new resources fit under ``limit`` beside the ``used`` ones (all of
    them when unlimited; none when usage already exceeds a lowered limit)."""
    if limit <= UNLIMITED:
        return asked
    return max(0, min(asked, limit - used))


def over_quota(resources: Iterable[str]) -> Conflict:
    """Neutron's ``OverQuota`` (409), whose message names the resources as a Python list does."""
    return Conflict(f"Quota exceeded for resources: {sorted(resources)}.", type="OverQuota")


def check_limits(defaults: Mapping[str, int], limits: Mapping[str, int]) -> None:
    """Every name is one of this service's resources (the API refuses others before they come here)."""
    unknown = sorted(set(limits) - set(defaults))
    if unknown:
        raise NotFound(f"Unknown quota resources {unknown}.", type="QuotaResourceUnknown")


def check_not_below_usage(limits: Mapping[str, int], usage: Mapping[str, int]) -> None:
    """A new limit below current usage is refused (400), as Neutron does unless ``force`` is given;
    ``-1`` is never below anything."""
    for name in sorted(limits):
        limit, used = limits[name], usage.get(name, 0)
        if limit != UNLIMITED and used > limit:
            raise BadRequest(
                f"Quota limit {limit} for {name} must be greater than or equal to already used {used}",
                type="HTTPBadRequest",
                field=name,
            )


def no_project_quota(project_id: str) -> NotFound:
    """``DELETE`` of a project that has no limit of its own anywhere (Neutron's 404)."""
    return NotFound(f"Quota for project {project_id} could not be found.", type="TenantQuotaNotFound")
