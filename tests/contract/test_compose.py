"""docker-compose.yml cannot run here (no Docker engine): check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from scopenet.commands.services import SERVICE_APPS, settings_class
from scopenet.runtime.settings import env_var

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_scopenet_service_runs_a_command_the_cli_has() -> None:
    services = _compose()["services"]
    ours = {name: svc for name, svc in services.items() if svc.get("image") == "scopenet:dev"}
    assert ours, "no scopenet service in docker-compose.yml"
    for name, svc in ours.items():
        cmd = svc["command"]
        assert cmd[0] == "service" and cmd[1] in SERVICE_APPS, f"{name}: unknown command {cmd}"


def test_environment_sets_only_settings_that_exist() -> None:
    """Every service's ``SCOPENET_*`` variables are settings of that service's own class."""
    for name, svc in _compose()["services"].items():
        if svc.get("image") != "scopenet:dev":
            continue
        cls = settings_class(svc["command"][1])
        known = {env_var(cls, f) for f in cls.model_fields}
        for var in svc.get("environment") or {}:
            if var.startswith("SCOPENET_"):
                assert var in known, f"{name} sets {var}, which {cls.__name__} does not read"


def test_healthchecks_probe_the_configured_health_port() -> None:
    for name, svc in _compose()["services"].items():
        if svc.get("image") != "scopenet:dev":
            continue
        port = svc["environment"]["SCOPENET_HEALTH_PORT"]
        probe = " ".join(svc["healthcheck"]["test"])
        assert f":{port}/readyz" in probe, f"{name} probes another port than SCOPENET_HEALTH_PORT={port}"
        deps = svc["depends_on"]
        assert all(d["condition"] == "service_healthy" for d in deps.values())


def test_every_service_of_the_cli_is_in_the_local_stack() -> None:
    services = _compose()["services"]
    run = {svc["command"][1] for svc in services.values() if svc.get("image") == "scopenet:dev"}
    assert set(SERVICE_APPS) <= run, f"docker-compose.yml lacks {set(SERVICE_APPS) - run}"
    assert "9696:9696" in " ".join(services["api"]["ports"])
