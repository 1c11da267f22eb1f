"""TopologySettings: its ``SCOPENET_TOPOLOGY_*`` and the shared knobs come from the environment,
bad values name their variable, and the class holds no other service's knobs."""

from __future__ import annotations

import os

import pytest

from scopenet.runtime.settings import InvalidSettings, env_var, load
from scopenet.services.topology.settings import TopologySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SCOPENET_")]:
        monkeypatch.delenv(var)


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SCOPENET_TOPOLOGY_RECONCILE_INTERVAL": "1.5",
        "SCOPENET_TOPOLOGY_STALE_AFTER": "20",
        "SCOPENET_TOPOLOGY_AGENT_TTL": "4",
        "SCOPENET_TOPOLOGY_IPAM_TIMEOUT": "2",
        "SCOPENET_DB_POOL_SIZE": "3",
        "SCOPENET_STREAM_REPLICAS": "3",
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    s = load(TopologySettings)
    assert (s.reconcile_interval, s.stale_after, s.agent_ttl, s.ipam_timeout) == (1.5, 20.0, 4.0, 2.0)
    assert (s.db_pool_size, s.stream_replicas) == (3, 3)


def test_defaults() -> None:
    s = load(TopologySettings)
    assert (s.reconcile_interval, s.stale_after, s.agent_ttl, s.ipam_timeout) == (5.0, 10.0, 10.0, 5.0)


def test_variable_names_are_unchanged() -> None:
    names = {env_var(TopologySettings, f) for f in TopologySettings.model_fields}
    assert {
        "SCOPENET_TOPOLOGY_RECONCILE_INTERVAL",
        "SCOPENET_TOPOLOGY_STALE_AFTER",
        "SCOPENET_TOPOLOGY_AGENT_TTL",
        "SCOPENET_TOPOLOGY_IPAM_TIMEOUT",
        "SCOPENET_DATABASE_URL",
        "SCOPENET_DB_POOL_SIZE",
    } <= names


def test_only_the_prefixed_variable_sets_a_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPENET_AGENT_TTL", "99")
    assert load(TopologySettings).agent_ttl == 10.0


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SCOPENET_TOPOLOGY_STALE_AFTER", "0"),
        ("SCOPENET_TOPOLOGY_AGENT_TTL", "soon"),
        ("SCOPENET_MAX_CONCURRENCY", "0"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidSettings) as err:
        load(TopologySettings)
    assert var in str(err.value) and "\n" not in str(err.value)


def test_holds_no_other_service_knobs() -> None:
    fields = set(TopologySettings.model_fields)
    assert not {f for f in fields if f.startswith(("agent_", "vxlan_", "api_"))}
    assert not fields & {"auth", "tokens_file"}
