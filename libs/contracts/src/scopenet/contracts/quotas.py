"""Per-project quotas (Neutron's ``quotas`` and ``quota_details`` extensions), on the wire.

Each service keeps the limits of the resources it creates and enforces them in the transaction
that inserts the row (``IPAM_RESOURCES``, ``TOPOLOGY_RESOURCES``); the HTTP API fans a quota read
or write out to both and merges the answers. A limit is an int: ``-1`` means unlimited, as in
Neutron; a project without a limit of its own for a resource has the service's default.

``rbac_policy`` is in both services: each counts and limits the entries it owns (IPAM: on address
scopes and subnet pools; topology: on networks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from scopenet.contracts.base import Command, Contract, Event, ProjectId
from scopenet.contracts.endpoint import Endpoint

UNLIMITED = -1
MAX_LIMIT = 2_147_483_647
"""Neutron's ``DB_INTEGER_MAX_VALUE``: limits are stored in an ``integer`` column."""

IPAM_RESOURCES = ("subnetpool", "address_scope", "rbac_policy")
TOPOLOGY_RESOURCES = ("network", "subnet", "port", "router", "floatingip", "rbac_policy")

Limit = Annotated[int, Field(ge=UNLIMITED, le=MAX_LIMIT)]
Limits = Annotated[dict[str, Limit], Field(max_length=16)]


class QuotaOf(Command):
    """The quotas of one project (``quota.get``, ``quota.defaults``, ``quota.details``, ``quota.delete``).

    Any caller may ask about its own project; only admin about another's (``delete``: admin only)."""

    project_id: ProjectId


class QuotaUpdate(Command):
    """Set some of a project's limits (admin). A limit below what the project already uses is
    refused unless ``force`` is set, as Neutron checks since 2025.1."""

    project_id: ProjectId
    limits: Limits
    force: bool = False


class QuotaList(Command):
    """Every project with a limit of its own (admin)."""


class Quota(Contract):
    """One project's limits for the resources of the answering service."""

    project_id: str
    limits: dict[str, int]

    @property
    def id(self) -> str:
        """What a quota is known by (the ``ce-subject`` of its events): its project."""
        return self.project_id


class QuotaReply(Contract):
    quota: Quota


class QuotaListReply(Contract):
    quotas: list[Quota]


class QuotaDetail(Contract):
    limit: int
    used: int
    """Live resources of the project (rows whose creation completed)."""
    reserved: int
    """Resources being created right now (a saga between its first and last step): they count
    against the limit already, and become ``used`` when their creation completes."""


class QuotaDetailsReply(Contract):
    project_id: str
    details: dict[str, QuotaDetail]


class QuotaDeleted(Contract):
    project_id: str
    existed: bool
    """Whether the project had limits of its own here (Neutron answers 404 when it had none anywhere)."""


class QuotaEvent(Event):
    """A project's limits changed (``updated``) or went back to the defaults (``deleted``)."""

    resource: Quota
    previous: Quota | None = None


@dataclass(frozen=True)
class QuotaCommands:
    """A service's quota commands (``scopenet.v1.<service>.quota.<verb>``), in index order when iterated."""

    get: Endpoint[QuotaOf, QuotaReply]
    defaults: Endpoint[QuotaOf, QuotaReply]
    details: Endpoint[QuotaOf, QuotaDetailsReply]
    list: Endpoint[QuotaList, QuotaListReply]
    update: Endpoint[QuotaUpdate, QuotaReply]
    delete: Endpoint[QuotaOf, QuotaDeleted]

    def __iter__(self) -> Iterator[Endpoint[Any, Any]]:
        return iter((self.get, self.defaults, self.details, self.list, self.update, self.delete))


def quota_commands(service: str) -> QuotaCommands:
    def ep(verb: str, request: type[Any], reply: type[Any], doc: str) -> Endpoint[Any, Any]:
        return Endpoint(service, "quota", verb, request, reply, doc)

    return QuotaCommands(
        get=ep("get", QuotaOf, QuotaReply, "a project's limits for this service's resources (its own, or admin)"),
        defaults=ep("defaults", QuotaOf, QuotaReply, "the default limits (its own project, or admin)"),
        details=ep(
            "details", QuotaOf, QuotaDetailsReply, "limit, used and reserved per resource (its own project, or admin)"
        ),
        list=ep("list", QuotaList, QuotaListReply, "projects with limits of their own (admin)"),
        update=ep(
            "update", QuotaUpdate, QuotaReply, "set some of a project's limits, -1 unlimited; not below usage (admin)"
        ),
        delete=ep("delete", QuotaOf, QuotaDeleted, "a project's limits back to the defaults (admin)"),
    )
