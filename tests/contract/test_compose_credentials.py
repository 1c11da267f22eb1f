"""The docker compose stack runs with per-service NATS users and Postgres roles (it cannot run here,
no Docker engine: check that its files agree with each other and with the permission table)."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sysconfig
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from scopenet.bus import natsauth
from scopenet.commands.services import SERVICE_APPS
from scopenet.contracts import permissions as perm
from scopenet.store.roles import role_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"


def _services() -> dict[str, dict]:  # type: ignore[type-arg]
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {n: s for n, s in doc["services"].items() if s.get("image") == "scopenet:dev"}


def _schema(service: str) -> str | None:
    app = importlib.import_module(SERVICE_APPS[service].split(":")[0])
    return str(app.SCHEMA) if hasattr(app, "MIGRATIONS") else None


def test_nats_conf_is_the_permission_table_rendered_for_the_compose_users() -> None:
    passwords = json.loads((COMPOSE / "nats-credentials.json").read_text())
    agents = [s["environment"]["SCOPENET_AGENT_ID"] for s in _services().values() if s["command"][1] == "l3-agent"]
    assert set(passwords) == {*natsauth.default_users(), *(perm.agent_user(a) for a in agents)}
    assert (COMPOSE / "nats.conf").read_text() == natsauth.render_authorization(passwords), (
        "deploy/compose/nats.conf is stale: scopenet nats config --credentials deploy/compose/nats-credentials.json "
        "--agent compose-agent > deploy/compose/nats.conf"
    )
    check = subprocess.run(
        [str(Path(sysconfig.get_path("scripts")) / "nats-server"), "-c", str(COMPOSE / "nats.conf"), "-t"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    nats = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["nats"]
    assert nats["command"][:2] == ["-c", "/etc/nats/nats.conf"]
    assert "./deploy/compose/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]


def test_each_service_logs_in_to_nats_as_its_own_user() -> None:
    passwords = json.loads((COMPOSE / "nats-credentials.json").read_text())
    users = []
    for name, svc in _services().items():
        env, service = svc["environment"], svc["command"][1]
        url = urlsplit(env["SCOPENET_NATS_URL"])
        expected = perm.agent_user(env["SCOPENET_AGENT_ID"]) if service == "l3-agent" else service
        assert url.username == expected, f"{name} logs in to NATS as {url.username}, not {expected}"
        assert url.password == passwords[expected], f"{name}: password differs from nats-credentials.json"
        users.append(url.username)
    assert len(users) == len(set(users))


def test_stateful_services_log_in_to_postgres_as_their_own_role_the_others_not_at_all() -> None:
    sql = (COMPOSE / "postgres-roles.sql").read_text()
    postgres = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["postgres"]
    assert any(v.endswith(":/docker-entrypoint-initdb.d/10-scopenet-roles.sql:ro") for v in postgres["volumes"])
    database = postgres["environment"]["POSTGRES_DB"]
    for name, svc in _services().items():
        schema = _schema(svc["command"][1])
        if schema is None:
            assert "SCOPENET_DATABASE_URL" not in svc["environment"], f"{name} keeps no state: no database URL"
            continue
        url = urlsplit(svc["environment"]["SCOPENET_DATABASE_URL"])
        role = role_name(schema, database)
        assert (url.username, url.path) == (role, f"/{database}"), name
        assert f"CREATE ROLE {role} LOGIN PASSWORD '{url.password}';" in sql
        assert re.search(rf"GRANT CONNECT, CREATE ON DATABASE {database} TO {role};", sql)


def test_kubernetes_roles_follow_the_same_names() -> None:
    cluster = (ROOT / "deploy" / "base" / "postgres.yaml").read_text()
    for service in SERVICE_APPS:
        schema = _schema(service)
        if schema is not None:
            assert f"CREATE ROLE {role_name(schema, 'scopenet')} NOLOGIN" in cluster
