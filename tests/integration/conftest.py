"""An IPAM service running in-process against the session's Postgres and NATS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from scopenet.bus.client import BusClient, decode_error
from scopenet.bus.errors import ERROR_CODE_HEADER
from scopenet.bus.micro import serve
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError
from scopenet.contracts.subjects import EVENTS_SUBJECTS, IPAM_ENDPOINTS, Endpoint
from scopenet.infra.select import Endpoints
from scopenet.services.ipam.app import ipam_service
from scopenet.services.ipam.settings import IpamSettings
from scopenet.store.service import Running

ADMIN = CallContext(project_id="0" * 32, roles=["admin"])
ALICE = CallContext(project_id="a" * 32, roles=["member"])
BOB = CallContext(project_id="b" * 32, roles=["member"])


def endpoint(subject_tail: str) -> Endpoint:
    for ep in IPAM_ENDPOINTS:
        if ep.subject.endswith("." + subject_tail):
            return ep
    raise KeyError(subject_tail)


class Ipam:
    """Calls IPAM commands the way any NATS client would: JSON in, JSON (or an error) out."""

    def __init__(self, bus: BusClient) -> None:
        self.bus = bus

    async def __call__(self, subject_tail: str, ctx: CallContext, **body: Any) -> Any:
        ep = endpoint(subject_tail)
        request = ep.request.model_validate({"context": ctx.model_dump(), **body})
        return await self.bus.call(ep, request)

    async def raw(self, subject_tail: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        data, headers = await self.bus.call_raw(endpoint(subject_tail).subject, payload)
        return data, headers

    async def unchecked(self, subject_tail: str, ctx: CallContext, **body: Any) -> Any:
        """Like calling, but the request goes out as given (no client-side validation): the
        service must refuse what the contract does not allow, whatever the client library does."""
        ep = endpoint(subject_tail)
        data, headers = await self.raw(subject_tail, json.dumps({"context": ctx.model_dump(), **body}).encode())
        if ERROR_CODE_HEADER in headers:
            raise decode_error(data, headers)
        return ep.reply.model_validate_json(data)


@pytest.fixture(scope="session")
async def ipam_running(infra: Endpoints) -> AsyncIterator[Running]:
    settings = IpamSettings(database_url=infra.database_url, nats_url=infra.nats_url, health_port=0)
    async with ipam_service(settings, database_url=infra.database_url, nats_url=infra.nats_url) as svc:
        yield svc


@pytest.fixture(scope="session")
async def ipam(ipam_running: Running, nats_client: Any) -> Ipam:
    return Ipam(BusClient(nats_client, timeout=10))


# ---------------------------------------------------------------- helpers for the IPAM tests


def uniq(prefix: str = "t") -> str:
    """A name no other test uses (the database lives as long as the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def project(*roles: str) -> CallContext:
    """A fresh project of its own, so a test never sees what another test left behind."""
    return CallContext(project_id=uuid.uuid4().hex, roles=list(roles or ("member",)))


def own(ctx: CallContext) -> dict[str, str]:
    """List filter: only what the caller's project owns (other tests share objects with everyone)."""
    return {"project_id": ctx.project_id}


def new_id() -> str:
    return str(uuid.uuid4())


async def fails(call: Awaitable[Any], code: int, type_: str, field: str | object | None = ...) -> DomainError:
    """Await ``call`` and check it failed with this code and Neutron type (and ``field``, when given)."""
    with pytest.raises(DomainError) as info:
        await call
    err = info.value
    assert (err.code, err.type) == (code, type_), f"got {err.code} {err.type}: {err.message}"
    if field is not ...:
        assert err.field == field, f"field {err.field!r}, wanted {field!r}: {err.message}"
    return err


class IpamFixtures:
    """Short forms for the objects most tests need; every call goes over NATS like any other."""

    def __init__(self, ipam: Ipam) -> None:
        self.ipam = ipam

    async def scope(self, ctx: CallContext, version: int = 4, *, shared: bool = False, **body: Any) -> Any:
        body.setdefault("name", uniq("scope"))
        reply = await self.ipam(
            "address_scope.create", ctx, address_scope={"ip_version": version, "shared": shared, **body}
        )
        return reply.address_scope

    async def pool(self, ctx: CallContext, prefixes: list[str], **body: Any) -> Any:
        body.setdefault("name", uniq("pool"))
        if "address_scope_id" in body and body["address_scope_id"] is not None:
            body["address_scope_id"] = str(body["address_scope_id"])
        reply = await self.ipam("subnetpool.create", ctx, subnetpool={"prefixes": prefixes, **body})
        return reply.subnetpool

    async def subnet(
        self,
        ctx: CallContext,
        pool: Any = None,
        *,
        network: str | None = None,
        version: int | None = None,
        project_id: str | None = None,
        **body: Any,
    ) -> Any:
        if pool is not None:
            body["subnetpool_id"] = str(pool.id)
            version = version or pool.ip_version
        reply = await self.ipam("subnet.allocate", ctx, **self.subnet_request(ctx, network, version, project_id, body))
        return reply.subnet

    @staticmethod
    def subnet_request(
        ctx: CallContext, network: str | None, version: int | None, project_id: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        if version is None and body.get("cidr"):
            version = 6 if ":" in body["cidr"] else 4
        return {
            "subnet_id": body.pop("subnet_id", new_id()),
            "network_id": network or new_id(),
            "project_id": project_id or ctx.project_id,
            "ip_version": version or 4,
            **body,
        }

    async def share(self, ctx: CallContext, object_type: str, object_id: Any, target: str) -> Any:
        """An ``access_as_shared`` RBAC entry on a scope or pool for ``target`` (a project id or "*")."""
        body = {"object_type": object_type, "object_id": str(object_id), "action": "access_as_shared"}
        reply = await self.ipam("rbac_policy.create", ctx, rbac_policy={**body, "target_tenant": target})
        return reply.rbac_policy

    async def ip(self, ctx: CallContext, subnet: Any, port: str | None = None, ip: str | None = None) -> str:
        body: dict[str, Any] = {"subnet_id": str(subnet.id), "port_id": port or new_id()}
        if ip is not None:
            body["ip_address"] = ip
        reply = await self.ipam("ip.allocate", ctx, **body)
        return str(reply.allocation.ip_address)


@pytest.fixture
def mk(ipam: Ipam) -> IpamFixtures:
    return IpamFixtures(ipam)


@contextlib.asynccontextmanager
async def sole_default(ipam: Ipam, version: int, *, shared: bool, prefixes: list[str]) -> AsyncIterator[Any]:
    """An admin pool that is *the* default of its IP family for the duration of the block.

    There is one default per family in the whole database, so a default some other test left behind
    is switched off first and restored afterwards; ours is switched off and deleted at the end.
    """
    listed = await ipam("subnetpool.list", ADMIN, filters={"is_default": True, "ip_version": version})
    previous = listed.subnetpools
    for p in previous:
        await ipam("subnetpool.update", ADMIN, id=str(p.id), subnetpool={"is_default": False})
    mine = (
        await ipam(
            "subnetpool.create",
            ADMIN,
            subnetpool={
                "name": uniq("default"),
                "prefixes": prefixes,
                "default_prefixlen": 26 if version == 4 else 64,
                "is_default": True,
                "shared": shared,
            },
        )
    ).subnetpool
    try:
        yield mine
    finally:
        await ipam("subnetpool.update", ADMIN, id=str(mine.id), subnetpool={"is_default": False})
        for p in previous:
            await ipam("subnetpool.update", ADMIN, id=str(p.id), subnetpool={"is_default": True})


class EventTap:
    """Every event published on ``scopenet.v1.evt.>`` from the moment the tap opens.

    ``settle`` makes a marker change (creates and deletes a throwaway address scope) and waits for its
    last event: the outbox relay publishes in commit order, so once the marker is in, every earlier
    change's event is too.
    """

    def __init__(self, js: JetStreamContext, ipam: Ipam) -> None:
        self.js = js
        self.ipam = ipam
        self.events: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self._sub: Any = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> EventTap:
        self._sub = await self.js.subscribe(
            EVENTS_SUBJECTS, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, cb=self._on
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._sub.unsubscribe()

    async def _on(self, msg: Any) -> None:
        self.events.append((msg.subject, dict(msg.headers or {}), json.loads(msg.data)))
        self._arrived.set()

    async def settle(self) -> None:
        marker = await self.ipam("address_scope.create", ADMIN, address_scope={"name": uniq("marker"), "ip_version": 4})
        marker_id = str(marker.address_scope.id)
        await self.ipam("address_scope.delete", ADMIN, id=marker_id)
        async with asyncio.timeout(10):
            while not any(
                e[2]["resource"].get("id") == marker_id and e[2]["type"].endswith(".deleted") for e in self.events
            ):
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.sleep(0.1)  # events of the marker's own batch may be acked out of order

    def about(self, *ids: object) -> list[tuple[str, dict[str, Any]]]:
        """(type, event) of the events whose resource is one of ``ids`` (resource id, or an IP's port id)."""
        wanted = {str(i) for i in ids}
        out = []
        for _subject, _headers, ev in self.events:
            res = ev["resource"]
            if str(res.get("id")) in wanted or str(res.get("port_id")) in wanted:
                out.append((ev["type"], ev))
        return out


@pytest.fixture
async def events(ipam: Ipam, nats_client: Any) -> AsyncIterator[EventTap]:
    async with EventTap(nats_client.jetstream(), ipam) as tap:
        yield tap


@contextlib.asynccontextmanager
async def not_serving(svc: Any, *, name: str, version: str, routes: Any) -> AsyncIterator[None]:
    """An in-process service (``svc.server``/``svc.nc``) stops answering its commands (nobody serves
    its subjects; what else it runs goes on), then serves ``routes`` again."""
    assert svc.server is not None
    await svc.server.stop()
    try:
        yield
    finally:
        svc.server = await serve(
            svc.nc, name=name, version=version, description=f"{name} (tests)", routes=routes, limit=64
        )
        await svc.nc.flush()
