"""What a command endpoint is: a subject with its request and reply models, typed.

``Endpoint[Req, Rep]`` carries its models as type parameters, so the code on both ends of the wire
is checked against them: a service binds a handler ``(Req) -> Rep`` to it (``scopenet.bus.micro``)
and a client's ``call(endpoint, request)`` returns a ``Rep`` (``scopenet.bus.client``). The
endpoints themselves are declared, one named constant each, in ``ipam_endpoints`` and
``topology_endpoints``; ``subjects`` is the index of them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from scopenet.contracts.base import ByIdCommand, Deleted, ListCommand
from scopenet.contracts.errors import InvalidInput, NotAuthorized

PREFIX = "scopenet.v1"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)
# A CRUD resource's models: create and update commands, one item's reply, the list reply, the delete command.
C = TypeVar("C", bound=BaseModel)
U = TypeVar("U", bound=BaseModel)
O = TypeVar("O", bound=BaseModel)  # noqa: E741 (the "one" reply, beside M for "many")
M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)


@dataclass(frozen=True)
class Endpoint(Generic[Req, Rep]):
    """One command: ``request`` in, ``reply`` out (its type parameters say which, for the type checker)."""

    service: str
    resource: str
    verb: str
    request: type[Req]
    reply: type[Rep]
    doc: str
    sender: str | None = None
    """For a command each sender sends on a subject of its own: the request field naming the sender
    (an agent's report: ``agent_id``). NATS permissions cannot tie a body to its sender, but they can
    tie a subject to a user: the command is sent on ``<subject>.<that field>`` (``subject_for``),
    each sender may publish only to its own, and the service, serving ``<subject>.*`` (``pattern``),
    refuses a request whose field names someone other than its subject does (``check_sender``)."""

    @property
    def subject(self) -> str:
        """The command's subject (for a per-sender command, the stem of its senders' subjects)."""
        return f"{PREFIX}.{self.service}.{self.resource}.{self.verb}"

    @property
    def pattern(self) -> str:
        """What the serving service subscribes to, and ``proto/index.json`` lists."""
        return f"{self.subject}.*" if self.sender else self.subject

    def sender_subject(self, sender: str) -> str:
        """The subject ``sender`` sends this per-sender command on (its NATS user may publish there)."""
        if self.sender is None:
            raise ValueError(f"{self.subject} is not sent per sender")
        if not _TOKEN.match(sender):
            raise InvalidInput(
                f"{self.sender} {sender!r}: 1 to 64 letters, digits, '-' or '_' (it is a subject token)",
                field=self.sender,
            )
        return f"{self.subject}.{sender}"

    def subject_for(self, request: BaseModel) -> str:
        """The subject ``request`` is sent on: the command's, or its sender's own."""
        return self.sender_subject(str(getattr(request, self.sender))) if self.sender else self.subject

    def check_sender(self, subject: str, request: BaseModel) -> None:
        """NotAuthorized unless ``request``, received on ``subject``, names the sender of that subject."""
        if self.sender is None:
            return
        token = subject.rpartition(".")[2]
        claimed = str(getattr(request, self.sender))
        if claimed != token:
            raise NotAuthorized(
                f"{self.resource}.{self.verb} sent on {subject} ({self.sender} {token!r}) names "
                f"{self.sender} {claimed!r}: a sender may only send as itself, on {self.subject}.<its {self.sender}>",
                field=self.sender,
            )

    @property
    def name(self) -> str:
        """nats.micro endpoint name (alphanumeric, ``-`` and ``_`` only)."""
        return f"{self.resource}-{self.verb}"


@dataclass(frozen=True)
class Rendered(Generic[Rep]):
    """A reply the service serialised itself, valid against ``Rep`` (JSON built by Postgres), sent as
    it is: a page of a thousand ports costs no thousand models (``scopenet.bus.micro``)."""

    json: bytes


@dataclass(frozen=True)
class Crud(Generic[C, U, O, M, D]):
    """A resource's five commands, Neutron's verbs: ``PORT.create``, ``PORT.get``, ... (in this order
    when iterated, which is the order of the index and of ``proto/``)."""

    create: Endpoint[C, O]
    get: Endpoint[ByIdCommand, O]
    list: Endpoint[Any, M]
    """Its request is a ``ListCommand``, or a ``QueryCommand`` where the service pages in SQL."""
    update: Endpoint[U, O]
    delete: Endpoint[D, Deleted]

    def __iter__(self) -> Iterator[Endpoint[Any, Any]]:
        return iter((self.create, self.get, self.list, self.update, self.delete))


def crud(
    service: str,
    resource: str,
    *,
    create: type[C],
    update: type[U],
    one: type[O],
    many: type[M],
    delete: type[D],
    query: type[ListCommand] = ListCommand,
) -> Crud[C, U, O, M, D]:
    listed = f"every {resource} the caller may see"
    if query is not ListCommand:
        listed += ": filters, tag filters, sort keys, marker and limit answered in SQL, one page per reply"
    return Crud(
        create=Endpoint(service, resource, "create", create, one, f"create a {resource}"),
        get=Endpoint(service, resource, "get", ByIdCommand, one, f"show one {resource} the caller may see"),
        list=Endpoint(service, resource, "list", query, many, listed),
        update=Endpoint(service, resource, "update", update, one, f"change a {resource}"),
        delete=Endpoint(service, resource, "delete", delete, Deleted, f"delete a {resource}"),
    )
