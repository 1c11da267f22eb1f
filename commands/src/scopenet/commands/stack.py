"""The whole stack as child processes: what ``scopenet up`` runs in the foreground and what
``scopenet demo`` runs around its walkthrough.

Each service is its own process (as in production), started with the infrastructure's URLs. The
L3 agent runs only where the datapath can (root, nftables), always with a host network namespace
of its own, so the stack never changes the machine's interfaces, routes or firewall.

Credentials: each process gets URLs of its own (``service_env``). On the embedded nats-server every
service and the agent log in as their own NATS user (``contracts/permissions.py``); given an admin
Postgres URL, ipam and topology log in as their own roles (``store/roles.py``) and the stateless
services get no database URL at all. A NATS or Postgres the operator configured without users is
passed on as it is: its users are the operator's business (README, "Credentials").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scopenet.bus import natsauth
from scopenet.commands.services import DATAPATH, migrated_schema
from scopenet.contracts import permissions as perm
from scopenet.infra.embedded import add_nats_users, record_stack
from scopenet.infra.processes import start_service, stop
from scopenet.infra.select import Endpoints
from scopenet.runtime.settings import Settings
from scopenet.services.l3_agent.settings import AgentSettings, agent_id_from
from scopenet.store import roles


def host_netns_name(settings: AgentSettings) -> str:
    """The host namespace the stack gives its L3 agent: configured, else one per state dir."""
    if settings.agent_host_netns:
        return settings.agent_host_netns
    digest = hashlib.sha1(str(settings.state_dir.resolve()).encode()).hexdigest()[:8]
    return f"scopenet-host-{digest}"


def datapath_problem() -> str | None:
    """Why this machine cannot run the L3 agent (one line), or None when it can."""
    from scopenet.netlink import DatapathUnavailable, check

    try:
        check()
    except DatapathUnavailable as exc:
        return str(exc)
    return None


@dataclass
class RunningStack:
    endpoints: Endpoints
    services: list[str]
    host_netns: str | None
    """The agent's host namespace; None when the datapath cannot run here."""
    datapath_problem: str | None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per service: the credentials-bearing variables it was started with (``service_env``)."""

    def dead(self) -> list[str]:
        return [s for s, p in self.procs.items() if p.poll() is not None]

    def wait_any_exit(self) -> list[str]:
        """Block until a service exits; returns which."""
        while not self.dead():
            with contextlib.suppress(subprocess.TimeoutExpired):
                next(iter(self.procs.values())).wait(timeout=1)
        return self.dead()


@contextlib.contextmanager
def run_stack(
    settings: Settings,
    ep: Endpoints,
    *,
    services: list[str],
    extra_env: Mapping[str, str] | None = None,
    quiet: bool = False,
    agent: AgentSettings | None = None,
) -> Iterator[RunningStack]:
    """Start ``services`` as processes (``scopenet.infra.processes``); stop them (SIGTERM, then
    SIGKILL after 15 s) on exit.

    ``agent``: the L3 agent's settings (its id and host namespace), needed when it is among ``services``.
    """
    problem = datapath_problem() if DATAPATH & set(services) else None
    wanted = [s for s in services if s not in DATAPATH or problem is None]
    if agent is None and DATAPATH & set(wanted):
        raise ValueError("run_stack: starting the L3 agent needs its AgentSettings")
    host = host_netns_name(agent) if agent is not None and DATAPATH & set(wanted) else None
    env = {
        **os.environ,
        "SCOPENET_DATABASE_URL": ep.database_url,
        "SCOPENET_NATS_URL": ep.nats_url,
        "SCOPENET_STATE_DIR": str(settings.state_dir),
        **(extra_env or {}),
    }
    own = service_env(ep, wanted, extra_env or {}, agent_id=agent.agent_id if agent is not None else None)
    if host:
        env["SCOPENET_AGENT_HOST_NETNS"] = host
    if quiet:
        env.setdefault("SCOPENET_LOG_LEVEL", "warning")
    extra = {"host_netns": host} if host else {}
    record = record_stack(settings.state_dir, database_url=ep.database_url, nats_url=ep.nats_url, **extra)
    stack = RunningStack(ep, wanted, host, problem, env=own)
    try:
        for svc in wanted:
            given = "SCOPENET_DATABASE_URL" in own[svc] or "SCOPENET_DATABASE_URL" in (extra_env or {})
            stack.procs[svc] = start_service(
                svc,
                env={**env, **own[svc]},
                drop=[] if given else ["SCOPENET_DATABASE_URL"],  # no database, no credentials for one
            )
        yield stack
    finally:
        stop(stack.procs.values(), timeout=15)
        record.unlink(missing_ok=True)


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop (a test's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def nats_user(service: str, agent_id: str | None) -> str:
    return perm.agent_user(agent_id) if service in DATAPATH and agent_id is not None else service


def service_env(
    ep: Endpoints, services: list[str], extra_env: Mapping[str, str], *, agent_id: str | None = None
) -> dict[str, dict[str, str]]:
    """Per service, ``SCOPENET_NATS_URL`` and (stateful services only) ``SCOPENET_DATABASE_URL``
    with credentials of its own where the infrastructure is ours to give them (module docstring).
    A variable ``extra_env`` sets is the caller's choice and left alone; ``agent_id`` (the agent's
    settings) names the L3 agent's NATS user unless ``extra_env`` sets ``SCOPENET_AGENT_ID``."""
    if "SCOPENET_AGENT_ID" in extra_env:
        agent_id = agent_id_from(extra_env["SCOPENET_AGENT_ID"])
    if agent_id is None and DATAPATH & set(services):
        raise ValueError("service_env: the L3 agent's NATS user needs its agent id")
    users = {svc: nats_user(svc, agent_id) for svc in services}
    passwords = add_nats_users(ep.nats_dir, sorted(set(users.values()))) if ep.nats_dir else {}
    out: dict[str, dict[str, str]] = {}
    for svc in services:
        env: dict[str, str] = {}
        if "SCOPENET_NATS_URL" not in extra_env:
            user = users[svc]
            url = natsauth.user_url(ep.nats_url, user, passwords[user]) if passwords else ep.nats_url
            env["SCOPENET_NATS_URL"] = url
        schema = migrated_schema(svc)
        if schema and ep.database_url and "SCOPENET_DATABASE_URL" not in extra_env:
            env["SCOPENET_DATABASE_URL"] = _run(roles.login_url(ep.database_url, schema))
        out[svc] = env
    return out


def tokens(path: Path) -> tuple[str, str, str, str]:
    """(admin token, admin project, member token, member project) from a tokens file ``up`` wrote."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    admin = member = None
    for token, spec in (doc.get("tokens") or {}).items():
        roles = spec.get("roles") or []
        if "admin" in roles and admin is None:
            admin = (str(token), str(spec["project_id"]))
        elif "admin" not in roles and member is None:
            member = (str(token), str(spec["project_id"]))
    if admin is None or member is None:
        raise ValueError(f"{path} needs an admin token and a non-admin token")
    return admin[0], admin[1], member[0], member[1]


def remove_datapath(host_netns: str, router_ids: list[str]) -> None:
    """After the agent has stopped: remove the routers' namespaces and the host namespace (with its
    bridges and veth ends). For runs that must leave nothing behind (the demo); ``up`` keeps them,
    so a restarted agent adopts its routers instead of rebuilding them."""
    from scopenet.datapath import names

    for name in [names.namespace(r) for r in router_ids] + [host_netns]:
        if Path("/run/netns", name).exists():
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
