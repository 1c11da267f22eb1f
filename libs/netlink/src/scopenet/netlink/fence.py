"""The fence table in the host namespace (see ``scopenet.datapath.fence`` for what it does)."""

from __future__ import annotations

from collections.abc import Iterable

from scopenet.datapath import fence
from scopenet.netlink import libnft
from scopenet.netlink.errors import NftError
from scopenet.netlink.kernel import Kernel


async def _run(kernel: Kernel, text: str) -> None:
    await kernel.ns.call(kernel.host, lambda: libnft.session(lambda ctx: ctx.run(text)))


async def setup(kernel: Kernel) -> None:
    await _run(kernel, fence.setup())


async def renew(kernel: Kernel, router_ports: Iterable[str], lease_seconds: float) -> None:
    await _run(kernel, fence.renew(router_ports, max(1, int(lease_seconds * 1000))))


async def remove(kernel: Kernel) -> None:
    """Delete the fence table if there is one (an agent running with the fence off)."""
    try:
        await _run(kernel, f"delete table {fence.FAMILY} {fence.TABLE}\n")
    except NftError as exc:
        if "No such file or directory" not in str(exc):
            raise


async def state(kernel: Kernel) -> tuple[frozenset[str], frozenset[str], int]:
    """``(router ports, leased Ethernet types, fenced packets)`` as the kernel has them now."""
    table = f"{fence.FAMILY} {fence.TABLE}"
    listing = await kernel.ns.call(kernel.host, lambda: libnft.session(lambda ctx: libnft.table_listing(ctx, table)))
    return fence.read(listing)
