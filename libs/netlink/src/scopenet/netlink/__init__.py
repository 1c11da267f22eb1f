"""Kernel adapters: network namespaces, rtnetlink (pyroute2) and nftables (libnftables).

Everything here does I/O against the running kernel and needs root. ``Namespaces`` is the thread
that enters namespaces, ``Kernel`` implements ``scopenet.datapath.DatapathPort``, ``TestInstance``
is a namespace standing in for a VM (demo, tests, ``scopenet instance``).
"""

from scopenet.netlink.errors import DatapathUnavailable, KernelError, NftError
from scopenet.netlink.instance import TestInstance
from scopenet.netlink.kernel import Kernel
from scopenet.netlink.namespaces import Namespaces
from scopenet.netlink.preflight import check

__all__ = ["DatapathUnavailable", "Kernel", "KernelError", "Namespaces", "NftError", "TestInstance", "check"]
