"""The IPAM routes: each endpoint of ``IPAM_ENDPOINTS`` bound to the method that serves it."""

from __future__ import annotations

import asyncpg

from scopenet.bus.micro import Route
from scopenet.contracts.subjects import IPAM_ENDPOINTS
from scopenet.services.ipam.address_scopes import AddressScopes
from scopenet.services.ipam.ips import Ips
from scopenet.services.ipam.rbac import Rbac
from scopenet.services.ipam.subnetpools import SubnetPools
from scopenet.services.ipam.subnets import Subnets


def routes(db: asyncpg.Pool) -> list[Route]:
    by_resource = {
        "address_scope": AddressScopes(db),
        "subnetpool": SubnetPools(db),
        "subnet": Subnets(db),
        "ip": Ips(db),
        "rbac_policy": Rbac(db),
    }
    # ``list`` is a builtin worth keeping usable inside the classes: that verb's method is ``list_``.
    return [
        Route(ep, getattr(by_resource[ep.resource], "list_" if ep.verb == "list" else ep.verb)) for ep in IPAM_ENDPOINTS
    ]
