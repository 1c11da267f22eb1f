"""Wiring of the IPAM service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from scopenet.services.ipam.handlers import routes
from scopenet.services.ipam.settings import IpamSettings
from scopenet.store.service import Running, running

NAME = "ipam"
VERSION = "0.1.0"
SCHEMA = "ipam"
MIGRATIONS = Path(__file__).parent / "migrations"


@asynccontextmanager
async def ipam_service(settings: IpamSettings, *, database_url: str, nats_url: str) -> AsyncIterator[Running]:
    async with running(
        settings,
        name=NAME,
        version=VERSION,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        description="scopenet IPAM: address scopes, subnet pools, prefix and IP allocation",
        make_routes=lambda db: routes(db, settings),
        database_url=database_url,
        nats_url=nats_url,
    ) as svc:
        yield svc
