"""Kernel tests: every test gets a private world of its own.

``Namespaces(private=True)`` puts the namespace thread in new network *and mount* namespaces with
a tmpfs on /run/netns, so the host namespace, the routers and the instances a test creates are
invisible to the machine and to other tests, and vanish with the thread (even if the test process
is killed). Nothing here touches the machine's own interfaces, routes or firewall. These tests need
root; without it they fail with the one-line reason (CI runs them as root; they never skip).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from scopenet.netlink import Kernel, Namespaces
from scopenet.services.l3_agent.reconciler import Reconciler

HOST = "host"
"""The namespace the agent treats as the host (bridges), inside the private sandbox."""
OWNER = "agent-1"


@dataclass
class Sandbox:
    ns: Namespaces
    kernel: Kernel
    host: str = HOST


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    ns = Namespaces(private=True)
    await ns.start()
    kernel = Kernel(ns, host=HOST)
    try:
        await kernel.start()
        yield Sandbox(ns, kernel)
    finally:
        await kernel.close()
        await ns.close()


@pytest.fixture
async def reconciler(sandbox: Sandbox) -> AsyncIterator[Reconciler]:
    rec = Reconciler(sandbox.kernel, owner=OWNER, resync_interval=3600, retry_delays=(0.2,))
    async with rec:
        yield rec
