"""Schema migrations with Alembic, one version table per service schema.

Each service keeps its revisions in ``services/<svc>/migrations`` (an ``env.py`` that calls
``run_env()`` below). Several replicas may start at once: a Postgres advisory lock makes them
migrate one after the other, so the second finds the schema already at head. Given an admin URL,
the schema's role is prepared first and the migrations run as that role, so it owns what they
create (``roles.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from scopenet.store import roles


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def alembic_config(*, url: str, schema: str, script_location: Path, role: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["url"] = _sqlalchemy_url(url)
    cfg.attributes["schema"] = schema
    cfg.attributes["role"] = role
    return cfg


async def upgrade(*, url: str, schema: str, script_location: Path) -> str | None:
    """Bring ``schema`` to the newest revision (Alembic is synchronous: run it in a thread).

    Returns the role the service must run as when ``url`` is an admin's (see ``roles.prepare``),
    None when the URL's user is the service's own."""
    role = await roles.prepare(url, schema)
    cfg = alembic_config(url=url, schema=schema, script_location=script_location, role=role)
    await asyncio.to_thread(command.upgrade, cfg, "head")
    return role


def run_env() -> None:
    """Body of every service's ``migrations/env.py``."""
    from alembic import context
    from sqlalchemy import pool, text
    from sqlalchemy.ext.asyncio import create_async_engine

    cfg = context.config
    url: str = cfg.attributes["url"]
    schema: str = cfg.attributes["schema"]
    role: str | None = cfg.attributes.get("role")

    def _migrate(conn):  # type: ignore[no-untyped-def]
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"scopenet-migrate-{schema}"})
        if role:  # everything the migrations create belongs to the service's role
            conn.execute(text(f'SET LOCAL ROLE "{role}"'))
        exists = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar()
        if not exists:  # (creating needs CREATE on the database, which a role given its schema lacks)
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        conn.execute(text(f'SET LOCAL search_path TO "{schema}", public'))
        context.configure(connection=conn, version_table_schema=schema, transactional_ddl=True)
        context.run_migrations()

    async def _main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_migrate)
        finally:
            await engine.dispose()

    asyncio.run(_main())


def execute_script(sql: str) -> None:
    """Run a multi-statement SQL script in a migration.

    SQLAlchemy's asyncpg dialect prepares every statement, and a prepared statement holds one
    command; asyncpg's own ``execute`` without arguments uses the simple protocol, which takes
    a whole script. We are inside Alembic's ``run_sync`` greenlet, so ``await_only`` may wait.
    """
    from alembic import op
    from sqlalchemy.util import await_only

    raw = op.get_bind().connection.driver_connection
    assert raw is not None, "migrations need a live asyncpg connection"
    await_only(raw.execute(sql))
