"""``db_errors``: no driver exception reaches a caller.

Pins the mapping every service relies on: a unique or exclusion violation (Postgres's final word on
overlap) is a 409 in the caller's words and Neutron type, or one quoting the database's detail;
lost connections, restarts, deadlocks and serialization failures are 503 (``TransientError``: try
again); anything else (a bug, a domain error raised inside the block) passes through unchanged.
"""

from __future__ import annotations

import asyncpg
import pytest

from scopenet.contracts.errors import BadRequest, Conflict, TransientError
from scopenet.store.db import TRANSIENT_DB_ERRORS, db_errors


async def raising(exc: BaseException, *args: object, **kwargs: str) -> BaseException:
    with pytest.raises(BaseException) as caught:
        async with db_errors(*args, **kwargs):  # type: ignore[arg-type]
            raise exc
    return caught.value


@pytest.mark.parametrize("violation", [asyncpg.ExclusionViolationError, asyncpg.UniqueViolationError])
async def test_constraint_races_are_409_in_the_callers_words(violation: type[asyncpg.PostgresError]) -> None:
    exc = await raising(
        violation("conflicting key value"), "The subnet overlaps", conflict_type="SubnetAllocationError"
    )
    assert isinstance(exc, Conflict) and exc.code == 409
    assert (exc.type, exc.message) == ("SubnetAllocationError", "The subnet overlaps")
    exc = await raising(violation("duplicate key value violates unique constraint"))
    assert isinstance(exc, Conflict) and exc.type == "Conflict"
    assert exc.message == "Conflicts with an existing record: duplicate key value violates unique constraint"


@pytest.mark.parametrize(
    "outage",
    [
        ConnectionResetError("reset by peer"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InternalClientError("cannot switch to state 15"),
    ],
)
async def test_outages_are_503_and_say_only_what_kind(outage: BaseException) -> None:
    exc = await raising(outage)
    assert isinstance(exc, TransientError) and exc.code == 503
    assert exc.message == f"database unavailable: {type(outage).__name__}"
    assert isinstance(outage, TRANSIENT_DB_ERRORS)


@pytest.mark.parametrize(
    "other", [BadRequest("bad", field="cidr"), KeyError("bug"), asyncpg.UndefinedTableError("no such table")]
)
async def test_everything_else_passes_through(other: BaseException) -> None:
    assert await raising(other) is other
