"""Which Postgres and NATS to use: the configured URLs, else Docker (testcontainers), else embedded.

The same code path serves all three: callers get two URLs and never know where they came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scopenet.infra import embedded as emb


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    nats_url: str
    source: str  # "configured", "docker" or "embedded": shown in logs and test headers
    nats_dir: Path | None = None
    """The embedded nats-server's directory (its users' credentials), None when NATS is not ours:
    ``nats_url`` is then the one URL every process gets (see ``services.stack``)."""


def docker_available() -> bool:
    try:
        import docker  # testcontainers' dependency

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _docker() -> Iterator[Endpoints]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    with (
        PostgresContainer("postgres:16", driver=None) as pg,
        DockerContainer("nats:2.10").with_command("-js").with_exposed_ports(4222) as nats,
    ):
        wait_for_logs(nats, "Server is ready")
        url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"
        yield Endpoints(pg.get_connection_url(), url, "docker")


@contextlib.contextmanager
def endpoints(
    *, database_url: str | None, nats_url: str | None, state_dir: Path, allow_docker: bool = False
) -> Iterator[Endpoints]:
    """Yield usable endpoints, starting what is missing; stop what was started on exit."""
    if database_url and nats_url:
        yield Endpoints(database_url, nats_url, "configured")
        return
    if allow_docker and not (database_url or nats_url) and docker_available():
        with _docker() as ep:
            yield ep
        return
    with contextlib.ExitStack() as stack:
        db = database_url or stack.enter_context(emb.postgres_server(state_dir / "postgres"))
        nats = nats_url or stack.enter_context(emb.nats_server(state_dir / "nats"))
        source = "embedded" if not (database_url or nats_url) else "mixed"
        yield Endpoints(db, nats, source, None if nats_url else state_dir / "nats")
