"""Postgres and NATS whose lifetimes the fault tests control: stopped, restarted, on the same address.

Both are private to the test (a data directory of their own, a socket or port of their own); the
machine's own servers are never touched. ``Postgres`` is the embedded one (PyPI ``pgserver``),
initialised and first started by pgserver, then stopped and started with the distribution's
``pg_ctl`` on the same data directory and Unix socket, so clients reconnect to the URL they had.
``Nats`` is ``scopenet.infra.embedded.nats_server`` on a fixed port with its JetStream store kept
across restarts, so streams, consumers and the KV bucket survive (as on a real server).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from pathlib import Path

from scopenet.infra.embedded import nats_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """An embedded Postgres in ``data_dir`` that ``stop``/``start`` bring down and up again."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = ""
        self._socket_dir: Path | None = None
        self._user: str | None = None

    def start(self) -> str:
        if self._socket_dir is None:  # first start: pgserver runs initdb and picks the socket directory
            import pgserver

            self.data_dir.mkdir(parents=True, exist_ok=True)
            # cleanup_mode=None: pgserver must not stop "its" server at exit (we stop it, by pg_ctl)
            server = pgserver.get_server(self.data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
            info = server.get_postmaster_info()
            self._socket_dir = info.socket_dir
            self._user = server.system_user
            self.url = server.get_uri()
            return self.url
        self._pg_ctl(
            "-w", "-t", "60", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(self.data_dir / "log"), "start"
        )
        return self.url

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean restart (sessions terminated); ``immediate``: a crash (recovery on start)."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def close(self) -> None:
        if self._socket_dir is not None and self.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("fast")

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        argv = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), *args]
        user = self._user if os.geteuid() == 0 else None  # Postgres refuses to run as root
        subprocess.run(argv, check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=90)


class Nats:
    """nats-server with JetStream on a fixed port; ``stop``/``start`` keep its store."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._server: contextlib.ExitStack | None = None

    def start(self) -> str:
        assert self._server is None, "already running"
        stack = contextlib.ExitStack()
        self.url = stack.enter_context(nats_server(self.data_dir, port=self.port))
        self._server = stack
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()  # SIGTERM: a clean shutdown, the store flushed
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None
