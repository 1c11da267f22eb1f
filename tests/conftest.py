"""Real infrastructure for the tests: the configured URLs, else Docker, else embedded servers.

Each test session gets a database of its own (created here, dropped at the end), so a run never
sees another run's rows, whichever Postgres it lands on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from scopenet.infra.select import Endpoints, endpoints
from scopenet.store.roles import drop_roles_sql


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(ep: Endpoints, name: str, admin: Any) -> None:
    """Drop the run's database. Embedded servers are thrown away with their directory anyway, so
    there a failure is only reported; on a configured server a leftover database is an error."""
    for attempt in range(3):
        try:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            asyncio.run(admin(drop_roles_sql(name)))  # the services' roles for it (store/roles.py)
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if attempt == 2:
                if ep.source == "configured":
                    raise
                warnings.warn(f"could not drop test database {name}: {exc!r}", stacklevel=1)


@pytest.fixture(scope="session")
def infra() -> Iterator[Endpoints]:
    # Not under pytest's temp root: another pytest run on the machine resets that to mode 0700,
    # and the embedded Postgres (which runs as its own user, never as root) would lose its files.
    state = Path(tempfile.mkdtemp(prefix="scopenet-test-"))
    os.chmod(state, 0o755)
    with (
        contextlib.ExitStack() as cleanup,
        endpoints(
            database_url=os.environ.get("SCOPENET_DATABASE_URL"),
            nats_url=os.environ.get("SCOPENET_NATS_URL"),
            state_dir=state,
            allow_docker=True,
        ) as ep,
    ):
        cleanup.callback(shutil.rmtree, state, ignore_errors=True)
        name = f"scopenet_test_{uuid.uuid4().hex[:12]}"

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(ep.database_url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        try:
            yield Endpoints(with_database(ep.database_url, name), ep.nats_url, ep.source)
        finally:
            drop_database(ep, name, admin)


def pytest_report_header(config: pytest.Config) -> str:
    src = "configured URLs" if os.environ.get("SCOPENET_DATABASE_URL") else "Docker if it answers, else embedded"
    return f"scopenet infrastructure: {src}"


@pytest.fixture(scope="session")
async def nats_client(infra: Endpoints) -> AsyncIterator[object]:
    import nats

    nc = await nats.connect(infra.nats_url)
    yield nc
    await nc.drain()
