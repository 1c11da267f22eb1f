"""The shared settings: read from ``SCOPENET_*``; a bad value stops an entry point with one line."""

from __future__ import annotations

import os

import pytest

from scopenet.runtime.settings import Settings, env_var, load, load_or_exit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SCOPENET_")]:
        monkeypatch.delenv(var)


def test_shared_knobs_only() -> None:
    assert set(Settings.model_fields) == {
        "database_url",
        "nats_url",
        "state_dir",
        "request_timeout",
        "health_port",
        "health_host",
        "log_level",
        "log_format",
    }
    assert env_var(Settings, "health_port") == "SCOPENET_HEALTH_PORT"


def test_log_level_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPENET_LOG_LEVEL", "DEBUG")
    assert load(Settings).log_level == "debug"


def test_an_entry_point_exits_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPENET_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as err:
        load_or_exit(Settings)
    message = str(err.value.code)
    assert message.startswith("scopenet: invalid SCOPENET_LOG_FORMAT='xml'") and "\n" not in message
