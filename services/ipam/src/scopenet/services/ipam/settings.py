"""IPAM's settings: the shared ones and those of a Postgres-backed service; no knob of its own yet."""

from __future__ import annotations

from scopenet.store.settings import StoreSettings


class IpamSettings(StoreSettings):
    """Everything the ``ipam`` service reads (``SCOPENET_*``)."""
