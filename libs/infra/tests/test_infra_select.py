"""Which Postgres and NATS a stack uses, decided without starting anything that was configured.

Pins that configured URLs are used as given (no embedded server, no Docker probe), and that with
one URL configured only the other server is started, and the result says so (``mixed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from scopenet.infra import embedded, select


def _refuse(*_: object, **__: object) -> None:
    raise AssertionError("nothing may be started or probed")


def test_configured_urls_are_used_as_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embedded, "postgres_server", _refuse)
    monkeypatch.setattr(embedded, "nats_server", _refuse)
    monkeypatch.setattr(select, "docker_available", _refuse)
    with select.endpoints(
        database_url="postgresql://x@127.0.0.1:1/x",
        nats_url="nats://127.0.0.1:1",
        state_dir=tmp_path,
        allow_docker=True,
    ) as ep:
        assert ep == select.Endpoints("postgresql://x@127.0.0.1:1/x", "nats://127.0.0.1:1", "configured")
        assert ep.nats_dir is None


def test_only_what_is_missing_is_started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: list[Path] = []

    @contextlib.contextmanager
    def nats_server(path: Path) -> Iterator[str]:
        started.append(path)
        yield "nats://127.0.0.1:4222"

    monkeypatch.setattr(embedded, "postgres_server", _refuse)
    monkeypatch.setattr(embedded, "nats_server", nats_server)
    monkeypatch.setattr(select, "docker_available", _refuse)
    with select.endpoints(
        database_url="postgresql://x@db/x", nats_url=None, state_dir=tmp_path, allow_docker=True
    ) as ep:
        assert (ep.database_url, ep.nats_url, ep.source) == ("postgresql://x@db/x", "nats://127.0.0.1:4222", "mixed")
        assert ep.nats_dir == tmp_path / "nats"
    assert started == [tmp_path / "nats"]
