"""IpamSettings: the shared and Postgres-service knobs come from ``SCOPENET_*``, bad values name
their variable, and the class holds no other service's knobs."""

from __future__ import annotations

import os

import pytest

from scopenet.runtime.settings import InvalidSettings, load
from scopenet.services.ipam.settings import IpamSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SCOPENET_")]:
        monkeypatch.delenv(var)


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SCOPENET_DATABASE_URL": "postgresql://ipam@db/scopenet",
        "SCOPENET_NATS_URL": "nats://nats:4222",
        "SCOPENET_DB_POOL_SIZE": "4",
        "SCOPENET_MAX_CONCURRENCY": "16",
        "SCOPENET_OUTBOX_BATCH": "32",
        "SCOPENET_OUTBOX_POLL": "0.5",
        "SCOPENET_STREAM_REPLICAS": "3",
        "SCOPENET_LOG_FORMAT": "console",
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    s = load(IpamSettings)
    assert (s.database_url, s.nats_url) == ("postgresql://ipam@db/scopenet", "nats://nats:4222")
    assert (s.db_pool_size, s.max_concurrency, s.outbox_batch, s.outbox_poll) == (4, 16, 32, 0.5)
    assert (s.stream_replicas, s.log_format) == (3, "console")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SCOPENET_DB_POOL_SIZE", "0"),
        ("SCOPENET_OUTBOX_POLL", "-1"),
        ("SCOPENET_STREAM_REPLICAS", "7"),
        ("SCOPENET_HEALTH_PORT", "http"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidSettings) as err:
        load(IpamSettings)
    assert var in str(err.value) and "\n" not in str(err.value)


def test_a_url_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPENET_DATABASE_URL", "postgresql://ipam:s3cret@db/scopenet")
    monkeypatch.setenv("SCOPENET_DB_POOL_SIZE", "0")
    with pytest.raises(InvalidSettings) as err:
        load(IpamSettings)
    assert "s3cret" not in str(err.value)


def test_holds_no_other_service_knobs() -> None:
    fields = set(IpamSettings.model_fields)
    assert not {f for f in fields if f.startswith(("agent_", "vxlan_", "topology_", "api_"))}
    assert not fields & {"auth", "tokens_file"}
