"""An IPAM service running in-process against the session's Postgres and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from scopenet.bus.client import BusClient
from scopenet.contracts.base import CallContext
from scopenet.contracts.subjects import IPAM_ENDPOINTS, Endpoint
from scopenet.infra.select import Endpoints
from scopenet.runtime import Running
from scopenet.services.ipam.app import ipam_service
from scopenet.settings import Settings

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
        return await self.bus.call_raw(endpoint(subject_tail).subject, payload)


@pytest.fixture(scope="session")
async def ipam_running(infra: Endpoints) -> AsyncIterator[Running]:
    settings = Settings(database_url=infra.database_url, nats_url=infra.nats_url, health_port=0)
    async with ipam_service(settings, database_url=infra.database_url, nats_url=infra.nats_url) as svc:
        yield svc


@pytest.fixture(scope="session")
async def ipam(ipam_running: Running, nats_client: Any) -> Ipam:
    return Ipam(BusClient(nats_client, timeout=10))
