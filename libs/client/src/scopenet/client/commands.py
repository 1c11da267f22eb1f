"""Commands: ``Client.call(endpoint, **fields)`` returns the endpoint's reply model.

Every command of the contracts' endpoint tables (``ipam_endpoints``, ``topology_endpoints``) is a
typed ``Endpoint[Request, Reply]``; the client builds the request from keyword fields (the caller's
``CallContext`` filled in), sends it on the endpoint's subject and returns the validated reply or
raises the typed error of ``wire``. ``command(endpoint)`` and ``resource(crud)`` bind endpoints
once, so ``subnets = client.resource(SUBNET)`` gives ``await subnets.create(subnet={...})``, typed
``SubnetReply``. Calls are independent: many may run at once on one connection.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel

from scopenet.client import wire
from scopenet.client.events import Deliver, EventStream
from scopenet.contracts.base import ByIdCommand, CallContext, Deleted, Event, ListCommand
from scopenet.contracts.consistency import PoolRevision, wait_budget
from scopenet.contracts.endpoint import Crud, Endpoint
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.contracts.ipam import SubnetPoolReply
from scopenet.contracts.subjects import EVENTS_STREAM
from scopenet.contracts.topology_endpoints import MIRROR_WAIT

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)
C = TypeVar("C", bound=BaseModel)
U = TypeVar("U", bound=BaseModel)
O = TypeVar("O", bound=BaseModel)  # noqa: E741 (one item's reply, beside M for many)
M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)
E = TypeVar("E", bound=Event)


class Client:
    """One NATS connection and the caller it speaks for (``context``: project and roles)."""

    def __init__(
        self,
        nc: NATS,
        *,
        context: CallContext,
        timeout: float = 5.0,
        read_your_writes: float = 2.0,
        owned: bool = False,
    ) -> None:
        self.nc = nc
        self.context = context
        self.timeout = timeout
        """Seconds a command may take; past that it raises ``TransientError`` (it may still run)."""
        self.read_your_writes = wait_budget(read_your_writes, timeout)
        """Seconds a pool update that names ``address_scope_id`` waits at most for topology to show
        it (``topology.mirror.wait``, docs/consistency.md); 0: never wait."""
        self._owned = owned

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        project_id: str,
        roles: list[str] | None = None,
        timeout: float = 5.0,
        **options: Any,
    ) -> Client:
        """Connect to NATS (``options``: any of ``nats.connect``'s, e.g. ``user``/``password``,
        ``inbox_prefix``, ``tls``) as ``project_id`` with ``roles``; close it with ``close()``
        or ``async with``."""
        context = CallContext(project_id=project_id, roles=list(roles if roles is not None else ["member"]))
        nc = await nats.connect(servers, **options)
        return cls(nc, context=context, timeout=timeout, owned=True)

    async def close(self) -> None:
        """Close the connection if the client opened it (``connect``); a borrowed one stays open."""
        if self._owned and not self.nc.is_closed:
            await self.nc.drain()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def as_caller(self, project_id: str, roles: list[str] | None = None) -> Client:
        """The same connection speaking for another project (a service acting for its users)."""
        context = CallContext(project_id=project_id, roles=list(roles if roles is not None else ["member"]))
        return Client(self.nc, context=context, timeout=self.timeout, read_your_writes=self.read_your_writes)

    # -- commands -------------------------------------------------------------------------------

    async def call(self, endpoint: Endpoint[Req, Rep], request: Req | None = None, /, **fields: Any) -> Rep:
        """Send one command: ``request`` (a model of the endpoint's request type) or its ``fields``
        (``context`` defaults to the client's). Returns the reply model; raises ``DomainError``
        subclasses (4xx, permanent) or ``TransientError`` (503, timeout, no service: retry)."""
        command = wire.request_for(endpoint, self.context, request, fields)
        subject = endpoint.subject_for(command)  # a per-sender command goes on its sender's subject
        if not self.nc.is_connected:
            # nats-py would buffer the request and send it after reconnecting, when nobody waits.
            raise TransientError(f"NATS is not connected: {subject} not sent")
        try:
            msg = await self.nc.request(subject, wire.encode(command), timeout=self.timeout)
        except NoRespondersError:
            raise TransientError(f"no service answers {subject}") from None
        except NatsTimeout:
            raise TransientError(f"{subject} did not answer within {self.timeout}s") from None
        except ConnectionClosedError:
            raise TransientError("NATS connection closed") from None
        reply = wire.reply_for(endpoint, msg.data, dict(msg.headers or {}))
        if isinstance(reply, SubnetPoolReply) and wire.moves_pool(command):
            await self._topology_sees(reply)
        return reply

    async def _topology_sees(self, reply: SubnetPoolReply) -> None:
        """Wait (bounded) until topology's networks show the pool's new scope; the write stands
        either way, so a wait that fails or times out only means reads may lag a moment."""
        if self.read_your_writes <= 0:
            return
        pool = PoolRevision(id=reply.subnetpool.id, revision_number=reply.subnetpool.revision_number)
        with contextlib.suppress(TransientError, DomainError):
            await self.call(MIRROR_WAIT, subnetpools=[pool], timeout=self.read_your_writes)

    def command(self, endpoint: Endpoint[Req, Rep]) -> Command[Req, Rep]:
        return Command(self, endpoint)

    def resource(self, crud: Crud[C, U, O, M, D]) -> Resource[C, U, O, M, D]:
        """A resource's five commands (Neutron's verbs), typed by its ``Crud`` table entry."""
        return Resource(
            create=Command(self, crud.create),
            get=Command(self, crud.get),
            list=Command(self, crud.list),
            update=Command(self, crud.update),
            delete=Command(self, crud.delete),
        )

    # -- events ---------------------------------------------------------------------------------

    def events(
        self,
        model: type[E],
        *,
        actions: list[str] | None = None,
        deliver: Deliver = "new",
        stream: str = EVENTS_STREAM,
    ) -> EventStream[E]:
        """The events of one contract model (``SubnetEvent``: IPAM's subnet created/updated/deleted),
        as ``async with client.events(...) as events: async for received in events``; see
        ``EventStream``."""
        return EventStream(self.nc.jetstream(), model, actions=actions, deliver=deliver, stream=stream)


@dataclass(frozen=True)
class Command(Generic[Req, Rep]):
    """One endpoint bound to a client: ``await command(**fields)`` → the reply model."""

    client: Client
    endpoint: Endpoint[Req, Rep]

    async def __call__(self, request: Req | None = None, /, **fields: Any) -> Rep:
        return await self.client.call(self.endpoint, request, **fields)


@dataclass(frozen=True)
class Resource(Generic[C, U, O, M, D]):
    """``create``, ``get`` (``id=``), ``list`` (``filters=``), ``update`` (``id=`` and the body),
    ``delete`` (``id=``) of one resource."""

    create: Command[C, O]
    get: Command[ByIdCommand, O]
    list: Command[ListCommand, M]
    update: Command[U, O]
    delete: Command[D, Deleted]
