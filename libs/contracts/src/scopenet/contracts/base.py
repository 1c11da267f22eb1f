"""Shared building blocks of commands, replies and events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Neutron's "name_string": printable, at most 255 characters, no surrounding whitespace.
Name = Annotated[
    str, StringConstraints(max_length=255, pattern=r"^$|^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$")
]
Description = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00]*$")]  # Postgres text holds no NUL
ProjectId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^,\x00-\x1f\x7f]+$")]
Tags = Annotated[list[Tag], Field(max_length=50)]


class Contract(BaseModel):
    """Base of every message: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CallContext(Contract):
    """Who is calling. The HTTP API fills it from the token; other systems set it themselves."""

    project_id: ProjectId
    roles: list[str] = Field(default_factory=list, max_length=32)
    request_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=255)
    """Who, inside the project (Keystone's user id, a tokens-file entry's ``user_id``); recorded by
    audit trails such as a subnet pool's allocation history, never used for policy."""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class Command(Contract):
    """A request on ``scopenet.v1.<service>.<resource>.<verb>``."""

    context: CallContext


class ByIdCommand(Command):
    id: UUID


class ListCommand(Command):
    """List what the caller may see. Equality filters are ANDed; a list value means any of them."""

    filters: dict[str, Any] = Field(default_factory=dict)


class PagedListCommand(ListCommand):
    """A list that can be read in pages, so no reply outgrows the NATS max payload.

    With ``limit``, the reply holds at most that many items, in a stable order, and a
    ``next_marker`` while more may follow; pass it back as ``marker`` for the next page. A marker is
    opaque (it names the last item of the page, so pages stay correct while items come and go).
    """

    limit: int | None = Field(default=None, ge=1, le=10_000)
    marker: str | None = Field(default=None, min_length=1, max_length=200)


class SortKey(Contract):
    key: str = Field(min_length=1, max_length=64)
    """An attribute's wire name (``name``, ``tenant_id``)."""
    ascending: bool = True


class QueryCommand(ListCommand):
    """A list with Neutron's query parameters, all answered by the service's SQL: one page read in
    constant memory however large the collection (docs/neutron.md#list-parameters).

    Order: the ``sort`` keys (``None`` first when ascending), then ``id`` when there is a ``limit``
    (else the service's own order). ``marker`` names the last item of the previous page, which must
    be visible and match the filters (404 otherwise); the page is what follows it in that order, or
    what precedes it with ``page_reverse``. Tag filters are Neutron's ``tags`` (all of),
    ``tags-any``, ``not-tags`` (not all of) and ``not-tags-any``. ``fields`` may narrow each item to
    those keys (``id`` is always kept). The reply's ``has_more`` says whether another page follows
    in the direction read.
    """

    sort: list[SortKey] = Field(default_factory=list, max_length=64)
    limit: int | None = Field(default=None, ge=1)
    marker: UUID | None = None
    page_reverse: bool = False
    tags: list[str] = Field(default_factory=list, max_length=256)
    tags_any: list[str] = Field(default_factory=list, max_length=256)
    not_tags: list[str] = Field(default_factory=list, max_length=256)
    not_tags_any: list[str] = Field(default_factory=list, max_length=256)
    fields: list[str] = Field(default_factory=list, max_length=64)


class DeleteCommand(ByIdCommand):
    if_revision: int | None = Field(default=None, ge=0)
    """Compare-and-swap: refuse (412) unless the resource is at this revision."""


class ErrorBody(Contract):
    """The body of every error reply (also in the ``Nats-Service-Error*`` headers)."""

    code: int
    type: str
    message: str
    field: str | None = None


class ErrorReply(Contract):
    type: str = "scopenet.v1.error"
    error: ErrorBody


class Deleted(Contract):
    type: str = "scopenet.v1.deleted"
    id: UUID


class Event(Contract):
    """Envelope of every JetStream event on ``scopenet.v1.evt.<resource>.<action>``.

    ``id`` is unique per committed change and is sent as ``Nats-Msg-Id``, so a relay that
    publishes twice after a crash is deduplicated by JetStream.
    """

    id: UUID
    type: str
    occurred_at: datetime
    resource: Any
    """The resource as it is after the change (each event type narrows this to its model)."""
    previous: Any = None
    """The resource before an update, when the subscriber may need to compare."""
