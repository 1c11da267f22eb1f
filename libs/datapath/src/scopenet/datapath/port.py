"""The datapath's port: what the reconciler needs from whatever programs the kernel.

``scopenet.netlink.kernel.Kernel`` implements it on Linux; tests use an in-memory fake that
shares the scenario suite.
"""

from __future__ import annotations

from typing import Protocol

from scopenet.datapath.model import ObservedRouter, Plan, RouterState


class DatapathPort(Protocol):
    async def observe(self, router_id: str, desired: RouterState | None) -> ObservedRouter:
        """The kernel state of one router, and the host-side objects ``desired`` would use."""
        ...

    async def apply(self, plan: Plan) -> str | None:
        """Apply the plan in order; the read-back fingerprint of the nft table if it was written."""
        ...

    async def routers(self) -> list[str]:
        """Router ids of every router namespace present (whoever created it)."""
        ...

    async def owner(self, router_id: str) -> str | None:
        """The agent that labelled the router's nft table; None if unlabelled (leave it alone)."""
        ...
