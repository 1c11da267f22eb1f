"""AgentSettings: the agent's knobs come from ``SCOPENET_*``, bad values name their variable, and
the class holds no other service's knobs (no API, no database pool, no outbox)."""

from __future__ import annotations

import os
from ipaddress import IPv4Address

import pytest

from scopenet.datapath.model import Underlay
from scopenet.netlink import vxlan
from scopenet.runtime.settings import InvalidSettings, load
from scopenet.services.l3_agent.settings import AgentSettings, agent_id_from


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SCOPENET_")]:
        monkeypatch.delenv(var)


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SCOPENET_AGENT_ID": "node-7.example.com",
        "SCOPENET_AGENT_HOST_NETNS": "scopenet-host",
        "SCOPENET_AGENT_BGP": "1",
        "SCOPENET_AGENT_RESYNC_INTERVAL": "12",
        "SCOPENET_AGENT_CONCURRENCY": "4",
        "SCOPENET_AGENT_HEARTBEAT_INTERVAL": "0.5",
        "SCOPENET_AGENT_FENCE": "process",
        "SCOPENET_VXLAN_LOCAL_IP": "192.0.2.7",
        "SCOPENET_VXLAN_GROUP": "239.2.2.2",
        "SCOPENET_VXLAN_PORT": "8472",
        "SCOPENET_NATS_URL": "nats://nats:4222",
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    s = load(AgentSettings)
    assert (s.agent_id, s.agent_host_netns, s.agent_bgp, s.agent_fence) == (
        "node-7-example-com",
        "scopenet-host",
        True,
        "process",
    )
    assert (s.agent_resync_interval, s.agent_concurrency, s.agent_heartbeat_interval) == (12.0, 4, 0.5)
    assert (s.vxlan_local_ip, s.vxlan_group, s.vxlan_port) == (IPv4Address("192.0.2.7"), IPv4Address("239.2.2.2"), 8472)
    assert vxlan.underlay(s.vxlan_local_ip, group=s.vxlan_group, port=s.vxlan_port) == Underlay(
        local_ip="192.0.2.7", group="239.2.2.2", port=8472
    )


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "rack1.node2")
    s = load(AgentSettings)
    assert (s.agent_id, s.agent_host_netns, s.agent_fence, s.vxlan_local_ip) == ("rack1-node2", None, "nats", None)
    assert vxlan.underlay(s.vxlan_local_ip, group=s.vxlan_group, port=s.vxlan_port) is None


def test_agent_id_from() -> None:
    assert agent_id_from(" a.b/c ") == "a-b-c"
    assert len(agent_id_from("x" * 100)) == 64
    with pytest.raises(ValueError, match="empty"):
        agent_id_from("  ")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SCOPENET_VXLAN_GROUP", "10.0.0.1"),
        ("SCOPENET_VXLAN_LOCAL_IP", "not-an-ip"),
        ("SCOPENET_AGENT_HOST_NETNS", "/run/netns/x"),
        ("SCOPENET_AGENT_FENCE", "sometimes"),
        ("SCOPENET_AGENT_ID", " "),
        ("SCOPENET_AGENT_CONCURRENCY", "0"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidSettings) as err:
        load(AgentSettings)
    assert var in str(err.value) and "\n" not in str(err.value)


def test_holds_no_other_service_knobs() -> None:
    fields = set(AgentSettings.model_fields)
    assert not {f for f in fields if f.startswith(("api_", "topology_", "outbox_"))}
    assert not fields & {"auth", "tokens_file", "db_pool_size", "max_concurrency", "stream_replicas"}
