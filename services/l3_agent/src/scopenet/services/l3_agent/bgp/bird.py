"""One BIRD 2 daemon, driven through its config file and ``birdc configure``.

BIRD runs in the foreground as a child of this process (``bird -f``), in the host namespace when
one is named (``nsenter --net=/run/netns/<name>``), with its control socket, pid file, config and
log in a directory of its own. A new configuration is written next to the old one, renamed over
it, and applied with ``birdc configure``: BIRD reconfigures in place, keeping established sessions
whose protocol did not change (a changed ``static`` protocol only sends the route differences).
If BIRD dies it is started again with the last configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
from pathlib import Path

from scopenet.runtime import log

_log = log.get("scopenet.bgp_speaker.bird")

#: What ``birdc configure`` prints when the new configuration was taken.
_CONFIGURED = ("Reconfigured", "Reconfiguration in progress", "Nothing to do")


class BirdError(RuntimeError):
    pass


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: nothing to load in a forked child
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when this process dies, even by kill -9 (Linux
    ``PR_SET_PDEATHSIG``; kept across the ``exec`` of nsenter and of bird), so no BIRD outlives it."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def bird_binaries() -> tuple[str, str] | None:
    bird = shutil.which("bird") or ("/usr/sbin/bird" if os.path.exists("/usr/sbin/bird") else None)
    birdc = shutil.which("birdc") or ("/usr/sbin/birdc" if os.path.exists("/usr/sbin/birdc") else None)
    return (bird, birdc) if bird and birdc else None


class Bird:
    def __init__(self, workdir: Path, *, netns: str | None = None, run_dir: str = "/run/netns") -> None:
        found = bird_binaries()
        if found is None:
            raise BirdError("BIRD 2 is not installed (Debian package bird2: scripts/os-deps.sh)")
        self.bird_bin, self.birdc_bin = found
        self.dir = workdir
        self.netns = netns
        self.run_dir = run_dir
        self.conf = workdir / "bird.conf"
        self.ctl = workdir / "bird.ctl"
        self.logfile = workdir / "bird.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.applied: str | None = None
        self.configure_ok = True
        self.restarts = 0
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def _argv(self, *args: str) -> list[str]:
        if not self.netns:
            return list(args)
        nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
        return [nsenter, f"--net={self.run_dir}/{self.netns}", "--", *args]

    def _write(self, text: str) -> None:
        tmp = self.conf.with_suffix(".new")
        tmp.write_text(text)
        os.replace(tmp, self.conf)

    async def start(self, config: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write(config)
        await self._spawn()
        self.applied = config
        self._watch = asyncio.create_task(self._supervise(), name="bird-supervisor")

    async def _spawn(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ctl.unlink()
        out = os.open(self.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv(
                    self.bird_bin, "-f", "-c", str(self.conf), "-s", str(self.ctl), "-P", str(self.dir / "bird.pid")
                ),
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            os.close(out)
        for _ in range(200):  # the control socket appears once the config is read
            if self.ctl.exists():
                _log.info("bird_started", pid=self.proc.pid, netns=self.netns or "(own)")
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.025)
        raise BirdError(f"bird did not start: {self.tail()}")

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self.proc is not None
            code = await self.proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            _log.error("bird_exited", code=code, restarts=self.restarts, log=self.tail(5))
            await asyncio.sleep(1.0)
            with contextlib.suppress(BirdError, OSError):
                await self._spawn()

    async def birdc(self, *args: str, timeout: float = 10) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.birdc_bin, "-s", str(self.ctl), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BirdError(f"birdc {' '.join(args)}: no answer within {timeout}s") from None
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise BirdError(f"birdc {' '.join(args)} failed: {text.strip()[-500:]}")
        return text

    async def configure(self, config: str) -> None:
        """Write and apply ``config``; on a refused configuration BIRD keeps the previous one."""
        if config == self.applied:
            return
        self._write(config)
        try:
            out = await self.birdc("configure")
        except BirdError:
            self.configure_ok = False
            raise
        if not any(word in out for word in _CONFIGURED):
            self.configure_ok = False
            raise BirdError(f"bird refused the configuration: {out.strip()[-500:]}")
        self.configure_ok = True
        self.applied = config

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def ready(self) -> bool:
        """BIRD answers on its socket and runs the configuration last written."""
        if not (self.alive() and self.configure_ok):
            return False
        try:
            return "Daemon is up and running" in await self.birdc("show", "status", timeout=2)
        except BirdError:
            return False

    async def stop(self) -> None:
        self._stopping = True
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        return ""
