"""Service processes: the one way every tool and test starts ``scopenet service <name>``.

``scopenet up`` and the demo (``commands/stack.py``), the benchmarks, the integration, kernel and
fault tests all run services as child processes, as production does. What they share lives here:
the command line (this interpreter, ``-m scopenet.commands.cli service <name>``), the environment
(the parent's, with the caller's ``SCOPENET_*`` variables over it — or none of the parent's
``SCOPENET_*`` at all, for a test that must not pick up the developer's), where the output goes (a
log file, nowhere, or the parent's terminal), the wait for readiness (a probe answering, while the
process has not exited) and the stop (SIGTERM to all, then SIGKILL to what outlives the deadline).

A caller that must start the process elsewhere (inside a network-namespace sandbox) passes its own
``spawn``, called like ``subprocess.Popen(argv, env=..., stdout=..., stderr=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

Spawn = Callable[..., "subprocess.Popen[bytes]"]
"""``spawn(argv, *, env, stdout, stderr)`` → the started process (``subprocess.Popen`` by default)."""

#: The module that runs ``scopenet service <name>`` (the ``scopenet`` command).
COMMAND_MODULE = "scopenet.commands.cli"


class NotReady(RuntimeError):
    """A service process exited, or did not become ready in time (the message has its log's tail)."""


def service_argv(name: str) -> list[str]:
    """The command line of ``scopenet service <name>``, with this interpreter (and its venv)."""
    return [sys.executable, "-m", COMMAND_MODULE, "service", name]


def service_environ(
    env: Mapping[str, str], *, inherit_scopenet: bool = True, drop: Iterable[str] = ()
) -> dict[str, str]:
    """The parent's environment with ``env`` over it, without the variables in ``drop``. Without
    ``inherit_scopenet`` none of the parent's ``SCOPENET_*`` variables is passed on."""
    base = {k: v for k, v in os.environ.items() if inherit_scopenet or not k.startswith("SCOPENET_")}
    full = {**base, **env}
    for var in drop:
        full.pop(var, None)
    return full


def start_service(
    name: str,
    *,
    env: Mapping[str, str],
    log: Path | None = None,
    quiet: bool = False,
    inherit_scopenet: bool = True,
    drop: Iterable[str] = (),
    spawn: Spawn = subprocess.Popen,
) -> subprocess.Popen[bytes]:
    """Start ``scopenet service <name>`` (see ``service_environ`` for ``env``, ``inherit_scopenet``
    and ``drop``). Its output is appended to ``log`` (stdout and stderr); else, with ``quiet``,
    stdout goes nowhere (errors still reach the terminal); else both go where the parent's go."""
    environ = service_environ(env, inherit_scopenet=inherit_scopenet, drop=drop)
    argv = service_argv(name)
    if log is not None:
        with open(log, "ab") as out:
            return spawn(argv, env=environ, stdout=out, stderr=subprocess.STDOUT)
    return spawn(argv, env=environ, stdout=subprocess.DEVNULL if quiet else None, stderr=None)


def tail(log: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" when there is none)."""
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def wait_ready(
    proc: subprocess.Popen[Any],
    ready: Callable[[], Awaitable[bool]],
    *,
    name: str,
    timeout: float = 60.0,
    every: float = 0.1,
    log: Path | None = None,
) -> float:
    """Poll ``ready()`` until it is True; the seconds it took. Raises ``NotReady`` (with the tail
    of ``log``) when the process exits first, or after ``timeout`` seconds. A probe that raises
    counts as not ready yet (the process may not listen yet)."""
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise NotReady(f"{name} exited with {proc.returncode}:\n{tail(log) if log else ''}")
        with contextlib.suppress(Exception):
            if await ready():
                return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise NotReady(f"{name} not ready within {timeout}s:\n{tail(log) if log else ''}")
        await asyncio.sleep(every)


def stop(procs: Iterable[subprocess.Popen[Any]], *, timeout: float = 15.0) -> None:
    """SIGTERM every process still running, then wait for all of them together; SIGKILL what still
    runs after ``timeout`` seconds. All at once: a stopping service may wait on another's answer."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def stop_async(procs: Iterable[subprocess.Popen[Any]], *, timeout: float = 15.0) -> None:
    """``stop`` without blocking the event loop (whose tasks may carry a stopping service's traffic)."""
    await asyncio.to_thread(stop, list(procs), timeout=timeout)
