"""The whole stack as child processes: what ``scopenet up`` runs in the foreground and what
``scopenet demo`` runs around its walkthrough.

Each service is its own process (as in production), started with the infrastructure's URLs. The
L3 agent runs only where the datapath can (root, nftables), always with a host network namespace
of its own, so the stack never changes the machine's interfaces, routes or firewall.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scopenet.infra.embedded import record_stack
from scopenet.infra.select import Endpoints
from scopenet.settings import Settings

#: Services that program the kernel (root, nftables): started only where the datapath can run.
DATAPATH = frozenset({"l3-agent"})


def host_netns_name(settings: Settings) -> str:
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
) -> Iterator[RunningStack]:
    """Start ``services`` as processes; stop them (SIGTERM, then SIGKILL after 15 s) on exit."""
    problem = datapath_problem() if DATAPATH & set(services) else None
    wanted = [s for s in services if s not in DATAPATH or problem is None]
    host = host_netns_name(settings) if any(s in DATAPATH for s in wanted) else None
    env = {
        **os.environ,
        "SCOPENET_DATABASE_URL": ep.database_url,
        "SCOPENET_NATS_URL": ep.nats_url,
        "SCOPENET_STATE_DIR": str(settings.state_dir),
        **(extra_env or {}),
    }
    if host:
        env["SCOPENET_AGENT_HOST_NETNS"] = host
    if quiet:
        env.setdefault("SCOPENET_LOG_LEVEL", "warning")
    extra = {"host_netns": host} if host else {}
    record = record_stack(settings.state_dir, database_url=ep.database_url, nats_url=ep.nats_url, **extra)
    stack = RunningStack(ep, wanted, host, problem)
    try:
        for svc in wanted:
            stack.procs[svc] = subprocess.Popen(
                [sys.executable, "-m", "scopenet.services.cli", "service", svc], env=env
            )
        yield stack
    finally:
        for p in stack.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in stack.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        record.unlink(missing_ok=True)


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
