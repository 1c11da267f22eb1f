"""``scopenet bench fleet`` at toy size, as a user runs it: twenty routers over three agents, the most
loaded agent killed with -9, its routers ACTIVE again on the other two.

The command runs as a subprocess against the session's Postgres (its own throwaway database) and a
nats-server of its own; each agent is a real process in a sandbox of its own. A short TTL keeps the
failover quick; figures are measured by the benchmark at full size, not asserted here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from scopenet.infra.select import Endpoints

pytestmark = pytest.mark.netns

AGENTS = {"fleet-agent-1", "fleet-agent-2", "fleet-agent-3"}


async def test_twenty_routers_go_active_and_survive_an_agent_kill(infra: Endpoints, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPENET_")}
    env |= {"SCOPENET_DATABASE_URL": infra.database_url, "SCOPENET_LOG_LEVEL": "warning"}
    argv = [sys.executable, "-m", "scopenet.commands.cli", "bench", "fleet", "--routers", "20", "--ports", "100"]
    argv += ["--clients", "8", "--agent-ttl", "3", "--heartbeat-interval", "0.5", "--state-dir", str(tmp_path)]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out)

    assert result["benchmark"] == "fleet" and result["sizes"] == {
        "routers": 20,
        "ports": 100,
        "agents": 3,
        "clients": 8,
    }
    cold = result["cold"]
    assert cold["routers"] == 20 and cold["with_gateway"] == 15 and cold["with_floating_ip"] == 5
    assert set(cold["per_agent"]) == AGENTS and sum(cold["per_agent"].values()) == 20
    assert min(cold["per_agent"].values()) >= 5  # least-loaded scheduling spreads them
    assert 0 < cold["seconds_to_all_active"] <= cold["topology_confirmed_after_s"]

    failover = result["failover"]
    killed = failover["killed_agent"]
    assert failover["routers_on_killed_agent"] == max(cold["per_agent"].values()) == cold["per_agent"][killed]
    assert set(failover["per_agent_after"]) == AGENTS - {killed} and sum(failover["per_agent_after"].values()) == 20
    assert set(failover["topology_live_agents"]) == AGENTS - {killed}  # topology saw it die
    # Nothing moves before the agent's TTL has run out, and everything has moved soon after.
    assert 2.5 < failover["kill_to_rescheduled"]["max_s"] < failover["seconds_to_all_active"] < 30
    assert failover["kill_to_active_per_router"]["max_s"] == failover["seconds_to_all_active"]

    rss = result["peak_rss_mb"]
    assert {"ipam", "topology", *AGENTS} <= set(rss) and all(
        rss[p] and rss[p] > 20 for p in ("ipam", "topology", *AGENTS)
    )
    assert result["agent_errors"] == []
