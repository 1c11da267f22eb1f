"""``SCOPENET_TOPOLOGY_EVENT_BACKOFF``: the redelivery schedule of topology's event consumers."""

from __future__ import annotations

import pytest

from scopenet.bus import backoff
from scopenet.runtime.settings import InvalidSettings, load
from scopenet.services.topology.settings import TopologySettings


def test_the_default_setting_is_the_default_schedule_and_rides_out_ten_minutes() -> None:
    assert TopologySettings().event_backoff == backoff.DEFAULT_SCHEDULE
    assert backoff.window(TopologySettings().event_backoff) >= 600


def test_a_bad_setting_fails_at_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPENET_TOPOLOGY_EVENT_BACKOFF", "1,2,soon")
    with pytest.raises(InvalidSettings, match="SCOPENET_TOPOLOGY_EVENT_BACKOFF"):
        load(TopologySettings)


def test_a_shortened_schedule_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPENET_TOPOLOGY_EVENT_BACKOFF", "0.5, 1,2")
    settings = load(TopologySettings)
    assert settings.event_backoff == (0.5, 1.0, 2.0)
    assert settings.topology_event_backoff == "0.5,1,2"
