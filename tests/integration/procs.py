"""Service processes for tests that need real separate processes (replicas, kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator

from scopenet.infra import processes
from scopenet.infra.select import Endpoints


class ServiceProcess:
    def __init__(self, name: str, infra: Endpoints, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.infra = infra
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        env = {
            "SCOPENET_DATABASE_URL": self.infra.database_url,
            "SCOPENET_NATS_URL": self.infra.nats_url,
            "SCOPENET_LOG_LEVEL": "warning",
            **self.env,
        }
        self.proc = processes.start_service(self.name, env=env, quiet=True)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop([self.proc], timeout=15)


@contextlib.contextmanager
def services(name: str, infra: Endpoints, count: int) -> Iterator[list[ServiceProcess]]:
    procs = [ServiceProcess(name, infra).start() for _ in range(count)]
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


async def service_stats(nc: object, name: str, *, wait: float = 0.3) -> list[dict[str, object]]:
    """``$SRV.STATS.<name>`` answered by every running instance (NATS service API discovery)."""
    import json

    inbox = nc.new_inbox()  # type: ignore[attr-defined]
    replies: list[dict[str, object]] = []

    async def on_reply(msg: object) -> None:
        replies.append(json.loads(msg.data))  # type: ignore[attr-defined]

    sub = await nc.subscribe(inbox, cb=on_reply)  # type: ignore[attr-defined]
    await nc.publish(f"$SRV.STATS.{name}", b"", reply=inbox)  # type: ignore[attr-defined]
    await asyncio.sleep(wait)
    await sub.unsubscribe()
    return replies


def requests_handled(stats: dict[str, object], endpoint: str) -> int:
    for ep in stats.get("endpoints", []):  # type: ignore[union-attr]
        if ep["name"] == endpoint:  # type: ignore[index]
            return int(ep["num_requests"])  # type: ignore[index]
    return 0
