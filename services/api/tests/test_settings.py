"""ApiSettings: the API's knobs come from ``SCOPENET_*``, bad values name their variable, and the
class holds no other service's knobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scopenet.runtime.settings import InvalidSettings, load
from scopenet.services.api.settings import ApiSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SCOPENET_")]:
        monkeypatch.delenv(var)


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCOPENET_API_HOST", "0.0.0.0")
    monkeypatch.setenv("SCOPENET_API_PORT", "9797")
    monkeypatch.setenv("SCOPENET_AUTH", "noauth")
    monkeypatch.setenv("SCOPENET_TOKENS_FILE", str(tmp_path / "t.yaml"))
    monkeypatch.setenv("SCOPENET_NATS_URL", "nats://nats:4222")
    monkeypatch.setenv("SCOPENET_HEALTH_PORT", "8080")
    monkeypatch.setenv("SCOPENET_REQUEST_TIMEOUT", "2.5")
    s = load(ApiSettings)
    assert (s.api_host, s.api_port, s.auth, s.tokens_file) == ("0.0.0.0", 9797, "noauth", tmp_path / "t.yaml")
    assert (s.nats_url, s.health_port, s.request_timeout) == ("nats://nats:4222", 8080, 2.5)


def test_defaults() -> None:
    s = load(ApiSettings)
    assert (s.api_host, s.api_port, s.auth, s.tokens_file) == ("127.0.0.1", 9696, "tokens", None)


@pytest.mark.parametrize(
    ("var", "value"),
    [("SCOPENET_API_PORT", "70000"), ("SCOPENET_AUTH", "basic"), ("SCOPENET_LOG_LEVEL", "loud")],
)
def test_a_bad_value_names_its_variable_in_one_line(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidSettings) as err:
        load(ApiSettings)
    assert var in str(err.value) and "\n" not in str(err.value)


def test_holds_no_other_service_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = set(ApiSettings.model_fields)
    assert not {f for f in fields if f.startswith(("agent_", "vxlan_", "topology_", "outbox_"))}
    assert not fields & {"db_pool_size", "max_concurrency", "stream_replicas"}
    monkeypatch.setenv("SCOPENET_AGENT_ID", "node-1")  # another service's variable: ignored, not an error
    assert not hasattr(load(ApiSettings), "agent_id")
