"""A small process supervisor for fault tests: it restarts what was killed, after a random delay.

Each ``Child`` is one service process (``scopenet service <name>``, started the way every tool
starts one: ``scopenet.infra.processes``), with a ``spawn`` function (``subprocess.Popen``, or an
``AgentSandbox``'s ``spawn`` so that it runs inside the sandbox) and an environment that is all of
its environment. The supervisor polls its children; one that died — killed by the test's chaos or
on its own — is started again after ``restart_delay`` seconds drawn from the test's seeded random
generator. A death the test did not cause is recorded with its exit code and the tail of its log:
a service that crashes on its own is a finding, not noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from scopenet.infra.processes import Spawn, start_service


def note(log: Path, what: str) -> None:
    """A line of the supervisor's own in the child's log (JSON, like the services' lines)."""
    with open(log, "a") as out:
        out.write(json.dumps({"event": "supervisor", "what": what, "timestamp": _now()}) + "\n")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Crash:
    child: str
    returncode: int | None
    log_tail: str


@dataclass
class Child:
    name: str
    """The service (``scopenet service <name>``)."""
    env: dict[str, str]
    log: Path
    spawn: Spawn = subprocess.Popen
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    restart_at: float | None = None
    """When a dead child is due to start again (monotonic seconds); None while it runs."""
    killed_by_us: bool = False
    killed_at: float = 0.0
    stuck_at: str = ""
    """Its kernel stack when a kill -9 did not end it within a second (empty otherwise)."""
    started_at: float = 0.0

    def start(self) -> None:
        self.proc = start_service(self.name, env=self.env, log=self.log, inherit_scopenet=False, spawn=self.spawn)
        note(self.log, f"started pid {self.proc.pid}")
        self.starts += 1
        self.restart_at = None
        self.killed_by_us = False
        self.stuck_at = ""
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def alive(self) -> bool:
        """Running and not already killed (a process stuck in the kernel may take a while to die)."""
        return self.running and not self.killed_by_us

    def kill9(self) -> None:
        """SIGKILL without waiting: the watcher sees the death (never block the test's event loop,
        which also carries the sandboxed agent's NATS traffic)."""
        assert self.proc is not None
        self.killed_by_us = True
        self.killed_at = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        note(self.log, f"kill -9 pid {self.proc.pid}")
        self.kills += 1

    async def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)

    def kernel_stack(self) -> str:
        """``/proc/<pid>/stack`` (root), else its wait channel: what a process that ignores SIGKILL waits on."""
        assert self.proc is not None
        for name in ("stack", "wchan"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{self.proc.pid}/{name}").read_text().strip()
                if text:
                    return " <- ".join(line.split()[-1] for line in text.splitlines()[:8])
        return "?"

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class Supervisor:
    children: dict[str, Child]
    rng: random.Random
    restart_delay: tuple[float, float] = (0.1, 1.5)
    crashes: list[Crash] = field(default_factory=list)
    slow_deaths: list[tuple[str, float, str]] = field(default_factory=list)
    """(child, seconds from SIGKILL to its end, its kernel stack meanwhile) when that took over 1 s"""
    _task: asyncio.Task[None] | None = None
    _closed: bool = False

    def start(self) -> None:
        for child in self.children.values():
            child.start()
        self._task = asyncio.create_task(self._watch(), name="fault-supervisor")

    async def _watch(self) -> None:
        while not self._closed:
            now = time.monotonic()
            for child in self.children.values():
                if child.running:
                    if child.killed_by_us and not child.stuck_at and now - child.killed_at > 1.0:
                        child.stuck_at = child.kernel_stack()  # where the kernel holds it
                        note(child.log, f"still alive 1 s after kill -9, in the kernel at: {child.stuck_at}")
                    continue
                if child.restart_at is None:  # just died
                    assert child.proc is not None
                    if not child.killed_by_us:
                        note(child.log, f"exited on its own with {child.proc.returncode}")
                        self.crashes.append(Crash(child.name, child.proc.returncode, child.tail()))
                    elif now - child.killed_at > 1.0:
                        # SIGKILL waits for a process in uninterruptible sleep (a kernel lock).
                        self.slow_deaths.append((child.name, round(now - child.killed_at, 1), child.stuck_at))
                        note(child.log, f"took {now - child.killed_at:.1f} s to die after kill -9")
                    child.restart_at = now + self.rng.uniform(*self.restart_delay)
                elif now >= child.restart_at:
                    child.start()
            await asyncio.sleep(0.05)

    def kill9(self, name: str) -> None:
        self.children[name].kill9()

    async def all_running(self) -> None:
        """Start every dead child now (no more delay) and return once each runs."""
        for child in self.children.values():
            if child.restart_at is not None:
                child.restart_at = time.monotonic()
        while True:
            if all(c.alive for c in self.children.values()):
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # All at once: a stopping service may wait on another's answer.
        await asyncio.gather(*(c.stop() for c in self.children.values()))
