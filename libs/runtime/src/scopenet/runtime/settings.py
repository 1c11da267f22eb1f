"""The settings every scopenet process shares (``SCOPENET_*``), validated when built (fail fast).

Each service declares its own knobs in a subclass (``scopenet.services.<name>.settings``; the
Postgres-backed ones through ``scopenet.store.settings.StoreSettings``) and reads only that class:
no process reads another service's knobs. Every class reads ``SCOPENET_<FIELD>``, so a variable's
name follows from its field's (``env_var``) and ``docs/configuration.md`` is generated from them.

Libraries never build settings themselves: the service hands them the values they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_state_dir() -> Path:
    """Per-user state: root keeps it under /var/lib, everyone else under ~/.local/state."""
    if os.geteuid() == 0:
        return Path("/var/lib/scopenet")
    return Path.home() / ".local" / "state" / "scopenet"


class Settings(BaseSettings):
    """What every process reads: where NATS and Postgres are, its own state, probes and logging."""

    model_config = SettingsConfigDict(env_prefix="SCOPENET_", extra="ignore", frozen=True)

    database_url: str | None = None
    """Postgres URL. Unset: an embedded Postgres (pgserver) is started in ``state_dir``."""

    nats_url: str | None = None
    """NATS URL (JetStream required). Unset: an embedded nats-server is started in ``state_dir``."""

    state_dir: Path = Field(default_factory=default_state_dir)
    """Where embedded Postgres/NATS keep their data, and where ``scopenet up`` records the stack."""

    request_timeout: float = Field(default=5.0, gt=0)
    """Seconds a NATS command may take before the caller gives up (and answers 503)."""

    health_port: int = Field(default=0, ge=0, le=65535)
    """Port of /livez, /readyz and /metrics. 0 picks a free port (printed at start)."""

    health_host: str = "127.0.0.1"
    """Address of the health and metrics server (``0.0.0.0`` where a kubelet or Prometheus probes it)."""

    log_level: str = "info"
    """Least severe log level written: ``debug``, ``info``, ``warning`` or ``error``."""

    log_format: str = Field(default="json", pattern="^(json|console)$")
    """``json`` (one object per line, for collectors) or ``console`` (for people)."""

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return v


S = TypeVar("S", bound=Settings)


class InvalidSettings(ValueError):
    """A ``SCOPENET_*`` variable with a value its settings class rejects; the message is one line
    naming each variable."""


def env_var(cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of ``cls``."""
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, str):
        return alias.upper()
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def describe(cls: type[BaseSettings], exc: ValidationError) -> str:
    """``exc`` in one line, each error under the variable's name (not the field's)."""
    parts = []
    for err in exc.errors():
        loc = err["loc"]
        field = str(loc[0]) if loc else ""
        name = env_var(cls, field) if field else cls.__name__
        shown = "" if "url" in field else f"={err.get('input')!r}"  # a URL may carry a password
        parts.append(f"{name}{shown}: {err['msg']}")
    return "invalid " + "; ".join(parts)


def load(cls: type[S]) -> S:
    """``cls`` from the environment; raises ``InvalidSettings`` naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        raise InvalidSettings(describe(cls, exc)) from None


def load_or_exit(cls: type[S]) -> S:
    """``load(cls)`` for an entry point: a bad variable stops the process with one line, no traceback."""
    try:
        return load(cls)
    except InvalidSettings as exc:
        raise SystemExit(f"scopenet: {exc}") from None
