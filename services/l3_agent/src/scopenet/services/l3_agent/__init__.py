"""The L3 agent: programs the address-scope datapath of its routers into the Linux kernel.

``reconciler.Reconciler`` turns RouterSpecs into kernel state (namespaces, veths on per-network
bridges, addresses, routes, one nftables table per router) through ``scopenet.netlink``; the NATS
side (consuming specs, heartbeats, status reports) only calls ``desired(spec)`` / ``forget(id)``.
"""

from __future__ import annotations

from scopenet.netlink import DatapathUnavailable, check


def require_datapath() -> str:
    """The nftables backend, or exit with one line (no traceback) when the machine cannot run it."""
    try:
        return check()
    except DatapathUnavailable as exc:
        raise SystemExit(str(exc)) from None
