"""Can this machine run the datapath? One clear line when it cannot, never a traceback."""

from __future__ import annotations

import os

from scopenet.netlink import libnft
from scopenet.netlink.errors import DatapathUnavailable


def check() -> str:
    """The nftables backend that will be used (``libnftables`` or ``nft``); raises
    ``DatapathUnavailable`` with a one-line reason when not root or nftables is missing."""
    if os.geteuid() != 0:
        raise DatapathUnavailable(
            "scopenet: the L3 datapath needs root (network namespaces, netlink, nftables); run it as root"
        )
    return libnft.backend()
