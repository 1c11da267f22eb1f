"""A Postgres role per service, owning only its schema (libs/store/roles.py), on a real Postgres.

ipam and topology run in-process against a database of the module's own, given the admin's URL
(as the tests and ``scopenet service`` beside ``scopenet up`` give it): each migrates as its own
role and serves as it. A private nats-server keeps them apart from the session's services.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from scopenet.bus.client import BusClient
from scopenet.contracts.base import CallContext
from scopenet.contracts.subjects import IPAM_ENDPOINTS
from scopenet.infra.embedded import nats_server
from scopenet.infra.select import Endpoints
from scopenet.services.ipam.app import MIGRATIONS as IPAM_MIGRATIONS
from scopenet.services.ipam.app import ipam_service
from scopenet.services.ipam.settings import IpamSettings
from scopenet.services.topology.app import topology_service
from scopenet.services.topology.settings import TopologySettings
from scopenet.store import roles
from scopenet.store.migrate import alembic_config
from scopenet.store.service import Running
from tests.conftest import with_database

ADMIN = CallContext(project_id="0" * 32, roles=["admin"])


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[tuple[str, str]]:
    """(name, admin URL) of a new database; dropped afterwards with the roles made for it."""
    name = f"scopenet_pgsec_{uuid.uuid4().hex[:10]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield name, with_database(admin_url, name)
    finally:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(admin_url, roles.drop_roles_sql(name))


async def _admin(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@dataclass
class Services:
    database: str
    url: str
    ipam: Running
    topology: Running


@pytest.fixture(scope="module")
async def services(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    tmp = Path(tmp_path_factory.mktemp("pgsec"))
    async with scratch_database(infra.database_url) as (name, url):
        with nats_server(tmp / "nats") as nats_url:
            urls = {"database_url": url, "nats_url": nats_url, "health_port": 0}
            async with (
                ipam_service(IpamSettings(**urls), database_url=url, nats_url=nats_url) as ipam,
                topology_service(TopologySettings(**urls), database_url=url, nats_url=nats_url) as topology,
            ):
                yield Services(name, url, ipam, topology)


async def _owners(url: str, schema: str) -> set[str]:
    """Owners of the schema and of every table, sequence and function in it."""
    rows = await _admin(
        url,
        """
        SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1
        UNION SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'S', 'v', 'p')
        UNION SELECT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $1
        """,
        schema,
    )
    return {r["owner"] for r in rows}


async def test_each_schema_and_all_in_it_belongs_to_its_services_role(services: Services) -> None:
    for schema, svc in (("ipam", services.ipam), ("topology", services.topology)):
        role = roles.role_name(schema, services.database)
        assert await _owners(services.url, schema) == {role}
        assert await svc.db.fetchval("SELECT current_user") == role, "the service's pool runs as its role"
        # the tables are really there (the migrations ran as the role, not beside it)
        assert await svc.db.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema) > 3


@pytest.mark.parametrize(("me", "other", "table"), [("ipam", "topology", "networks"), ("topology", "ipam", "subnets")])
async def test_a_services_role_cannot_read_or_write_the_others_schema(
    services: Services, me: str, other: str, table: str
) -> None:
    conn = await asyncpg.connect(await roles.login_url(services.url, me))  # logs in as the role itself
    try:
        assert await conn.fetchval("SELECT current_user") == roles.role_name(me, services.database)
        await conn.fetchval(f"SELECT count(*) FROM {me}.outbox")  # its own: fine
        for sql in (
            f"SELECT * FROM {other}.{table} LIMIT 1",
            f"DELETE FROM {other}.{table}",
            f"CREATE TABLE {other}.sneaky (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        with pytest.raises(asyncpg.UndefinedTableError):  # a schema it may not use is not on its path at all
            await conn.execute(f"SET search_path TO {other}; SELECT * FROM {table} LIMIT 1")
        # and through the service's own pool, whatever it is asked to run
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await (services.ipam if me == "ipam" else services.topology).db.fetch(f"SELECT * FROM {other}.{table}")
    finally:
        await conn.close()


async def test_services_work_as_their_roles(services: Services) -> None:
    nc = services.ipam.nc
    create = next(e for e in IPAM_ENDPOINTS if e.subject.endswith("address_scope.create"))
    name = f"pgsec-{uuid.uuid4().hex[:8]}"
    reply = await BusClient(nc, timeout=10).call(
        create, create.request(context=ADMIN, address_scope={"name": name, "ip_version": 4})
    )
    assert reply.address_scope.name == name
    rows = await _admin(services.url, "SELECT count(*) AS n FROM ipam.address_scopes WHERE name = $1", name)
    assert rows[0]["n"] == 1


async def test_a_schema_an_older_version_made_as_the_admin_is_adopted(
    infra: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Session 1 migrated as whoever the URL named (the embedded stack: the superuser): the next
    start hands the schema and all in it to the role, and the service works as the role."""
    from alembic import command

    async with scratch_database(infra.database_url) as (name, url):
        cfg = alembic_config(url=url, schema="ipam", script_location=IPAM_MIGRATIONS)  # no role: the old way
        await asyncio.to_thread(command.upgrade, cfg, "head")
        admin = (await _admin(url, "SELECT current_user AS u"))[0]["u"]
        assert await _owners(url, "ipam") == {admin}
        with nats_server(Path(tmp_path_factory.mktemp("adopt")) / "nats") as nats_url:
            settings = IpamSettings(database_url=url, nats_url=nats_url, health_port=0)
            async with ipam_service(settings, database_url=url, nats_url=nats_url) as ipam:
                assert await _owners(url, "ipam") == {roles.role_name("ipam", name)}
                bus = BusClient(ipam.nc, timeout=10)
                for tail, body in (
                    ("address_scope.create", {"address_scope": {"name": "old", "ip_version": 4}}),
                    ("subnetpool.create", {"subnetpool": {"name": "old", "prefixes": ["10.9.0.0/16"]}}),
                ):  # writes to every kind of object the old version made: tables, sequences, the outbox trigger
                    ep = next(e for e in IPAM_ENDPOINTS if e.subject.endswith(tail))
                    await bus.call(ep, ep.request.model_validate({"context": ADMIN.model_dump(), **body}))
                await asyncio.wait_for(ipam.relay.drained.wait(), timeout=10)


async def test_roles_are_made_once_per_database_by_concurrent_sessions_and_dropped_with_it(infra: Endpoints) -> None:
    async with scratch_database(infra.database_url) as (name, url):
        got = await asyncio.gather(*(roles.prepare(url, schema) for schema in ("ipam", "topology") * 4))
        assert set(got) == {roles.role_name("ipam", name), roles.role_name("topology", name)}
        async with scratch_database(infra.database_url) as (other, _):
            assert roles.role_name("ipam", other) != roles.role_name("ipam", name)  # no shared role, no fight
    left = await _admin(infra.database_url, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", got)
    assert not left, "the database's roles go with it"


def test_role_names() -> None:
    assert roles.role_name("ipam", "scopenet") == "scopenet_ipam"  # what deploy/ and compose create
    long = roles.role_name("ipam", "x" * 63)
    assert long.startswith("scopenet_ipam__") and len(long) <= 63
