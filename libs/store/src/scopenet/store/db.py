"""Postgres access: one asyncpg pool per service, its schema first on the search path.

Constraint violations are the database's final word on overlap and uniqueness; ``db_errors``
turns them, and lost connections, into the two error roots so no handler ever leaks a driver
exception to a caller.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import asyncpg

from scopenet.contracts.errors import Conflict, TransientError


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, *, schema: str, size: int, role: str | None = None) -> asyncpg.Pool:
    """``role``: run every connection as that role (``SET ROLE`` at connection start, kept across
    the pool's resets), for a service given an admin URL (see ``roles.py``)."""
    settings = {"search_path": f"{schema},public", "application_name": f"scopenet-{schema}"}
    if role:
        settings["role"] = role
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min(2, size),
            max_size=size,
            init=_init_connection,
            server_settings=settings,
            command_timeout=30,
        )
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError) as exc:
        raise TransientError(f"Postgres unreachable: {exc}") from exc
    assert pool is not None
    return pool


TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    # A pooled connection whose server went away (a Postgres restart) can fail its next query with
    # "cannot switch to state …; another operation is in progress" before the pool notices it died.
    asyncpg.InternalClientError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)


@contextlib.asynccontextmanager
async def db_errors(conflict_message: str | None = None, *, conflict_type: str = "Conflict") -> AsyncIterator[None]:
    """Map driver errors: constraint races → 409 (with the caller's words), outages → 503."""
    try:
        yield
    except (asyncpg.ExclusionViolationError, asyncpg.UniqueViolationError) as exc:
        raise Conflict(
            conflict_message or f"Conflicts with an existing record: {exc.detail or exc}", type=conflict_type
        ) from exc
    except TRANSIENT_DB_ERRORS as exc:
        raise TransientError(f"database unavailable: {type(exc).__name__}") from exc
