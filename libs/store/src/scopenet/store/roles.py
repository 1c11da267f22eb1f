"""A Postgres role per service, owning its schema and nothing else.

A service's schema (``ipam``, ``topology``) belongs to a role of its own; no role is granted
anything on another's schema, so ``ipam``'s role cannot read or write ``topology``'s tables (and
the other way round). Two ways to get there:

- **The platform creates the roles** (deploy/: CloudNativePG; docker-compose: an init script) and
  each service connects as its role; the service creates its schema, which it then owns.
- **The service is given an admin (superuser) URL** (``scopenet up`` with embedded Postgres, the
  tests, an operator's ``scopenet migrate``): the migration creates the role if it is missing,
  makes it the owner of the schema and of everything in it (adopting a schema an older version
  created as the admin), runs the migrations as the role, and the service's pool runs as the role
  too (``SET ROLE`` at connection start). ``scopenet up`` goes one step further and gives each
  service a URL that logs in as its role (``login_url``).

Role names are per database, so stacks and test sessions sharing one Postgres never share (or
fight over the password of) a role: ``scopenet_<schema>`` in the database ``scopenet`` (what
deploy/ and docker-compose create), ``scopenet_<schema>__<database>`` in any other (a hash of the
database name when that would be too long). ``drop_roles`` removes a dropped database's roles.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from scopenet.contracts.errors import TransientError

HOME_DATABASE = "scopenet"
_MAX_NAME = 63  # NAMEDATALEN - 1


def _suffix(database: str) -> str:
    return database if len(database) <= 40 else hashlib.sha1(database.encode()).hexdigest()[:16]


def role_name(schema: str, database: str) -> str:
    if database == HOME_DATABASE:
        return f"scopenet_{schema}"
    name = f"scopenet_{schema}__{_suffix(database)}"
    if len(name) > _MAX_NAME:
        raise ValueError(f"schema name {schema!r} is too long for a role name")
    return name


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


_ADOPT = """
DO $$
DECLARE
    r record;
    target regrole := {role_lit}::regrole;
BEGIN
    -- tables, views, sequences of their own (a serial's or identity's sequence moves with its table)
    FOR r IN
        SELECT c.oid::regclass::text AS name, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {schema_lit} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relowner <> target
          AND NOT EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
              AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
            CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                           WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            r.name, {role_lit});
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure::text AS name FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = {schema_lit} AND p.proowner <> target
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.name, {role_lit});
    END LOOP;
    FOR r IN
        SELECT t.oid::regtype::text AS name FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = {schema_lit} AND t.typtype IN ('e', 'd', 'r', 'm') AND t.typowner <> target
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO %I', r.name, {role_lit});
    END LOOP;
END $$;
"""

_CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {role_lit}) THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by another session
END $$;
"""


async def is_admin(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))


async def prepare(url: str, schema: str, *, password: str | None = None) -> str | None:
    """With an admin URL: the schema's role exists (and may log in with ``password`` if given),
    owns the schema and everything in it; returns the role's name. With any other URL: nothing
    to do (the URL's user is the service's role), returns None. Idempotent; replicas and
    concurrent sessions may run it at once."""
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError) as exc:
        raise TransientError(f"Postgres unreachable: {exc}") from exc
    try:
        if not await is_admin(conn):
            return None
        database = str(await conn.fetchval("SELECT current_database()"))
        role = role_name(schema, database)
        async with conn.transaction():
            # One session at a time per database (advisory locks are per database, so are role names):
            # two GRANTs on one database at once fail ("tuple concurrently updated").
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('scopenet-roles'))")
            await conn.execute(_CREATE_ROLE.format(role=_ident(role), role_lit=_lit(role)))
            if password is not None:
                await conn.execute(f"ALTER ROLE {_ident(role)} LOGIN PASSWORD {_lit(password)}")
            if not await conn.fetchval("SELECT has_database_privilege($1, current_database(), 'CONNECT')", role):
                await conn.execute(f"GRANT CONNECT ON DATABASE {_ident(database)} TO {_ident(role)}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)} AUTHORIZATION {_ident(role)}")
            await conn.execute(f"ALTER SCHEMA {_ident(schema)} OWNER TO {_ident(role)}")
            await conn.execute(_ADOPT.format(role_lit=_lit(role), schema_lit=_lit(schema)))
        return role
    finally:
        await conn.close()


def with_user(url: str, user: str, password: str) -> str:
    """``url`` logging in as ``user`` (host, database and options kept)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


async def login_url(admin_url: str, schema: str) -> str:
    """A URL that logs in as the schema's role (a fresh password each call), prepared with
    ``admin_url``; ``admin_url`` itself when it is not an admin's (it is already the role's)."""
    password = secrets.token_hex(24)
    role = await prepare(admin_url, schema, password=password)
    return admin_url if role is None else with_user(admin_url, role, password)


def drop_roles_sql(database: str) -> str:
    """SQL (for an admin, after ``DROP DATABASE``) removing the roles made for ``database``."""
    if database == HOME_DATABASE:
        raise ValueError("the home database's roles are the installation's: drop them by hand")
    pattern = "scopenet\\_%\\_\\_" + _suffix(database).replace("_", "\\_").replace("%", "\\%")
    return f"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE {_lit(pattern)} LOOP
        BEGIN
            EXECUTE format('DROP ROLE %I', r.rolname);
        EXCEPTION WHEN dependent_objects_still_exist OR undefined_object THEN
            NULL;  -- still owns something somewhere: leave it
        END;
    END LOOP;
END $$;
"""
