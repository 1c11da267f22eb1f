"""The IPAM routes: each endpoint of ``IPAM_ENDPOINTS`` bound to the method that serves it.

``Route.bind`` is typed: a method that does not take the endpoint's request model or does not return
its reply model is a type error. ``bound_once`` refuses to start if an endpoint is left unbound.
"""

from __future__ import annotations

import asyncpg

from scopenet.bus.micro import Route, bound_once
from scopenet.contracts import ipam_endpoints as ep
from scopenet.contracts.subjects import IPAM_ENDPOINTS
from scopenet.services.ipam.address_scopes import AddressScopes
from scopenet.services.ipam.ips import Ips
from scopenet.services.ipam.rbac import Rbac
from scopenet.services.ipam.subnetpools import SubnetPools
from scopenet.services.ipam.subnets import Subnets


def routes(db: asyncpg.Pool) -> list[Route]:
    # ``list`` is a builtin worth keeping usable inside the classes: that verb's method is ``list_``.
    scopes, pools, subnets, ips, rbac = AddressScopes(db), SubnetPools(db), Subnets(db), Ips(db), Rbac(db)
    return bound_once(
        [
            Route.bind(ep.ADDRESS_SCOPE.create, scopes.create),
            Route.bind(ep.ADDRESS_SCOPE.get, scopes.get),
            Route.bind(ep.ADDRESS_SCOPE.list, scopes.list_),
            Route.bind(ep.ADDRESS_SCOPE.update, scopes.update),
            Route.bind(ep.ADDRESS_SCOPE.delete, scopes.delete),
            Route.bind(ep.SUBNETPOOL.create, pools.create),
            Route.bind(ep.SUBNETPOOL.get, pools.get),
            Route.bind(ep.SUBNETPOOL.list, pools.list_),
            Route.bind(ep.SUBNETPOOL.update, pools.update),
            Route.bind(ep.SUBNETPOOL.delete, pools.delete),
            Route.bind(ep.SUBNETPOOL_ADD_PREFIXES, pools.add_prefixes),
            Route.bind(ep.SUBNETPOOL_REMOVE_PREFIXES, pools.remove_prefixes),
            Route.bind(ep.SUBNETPOOL_USAGE, pools.usage),
            Route.bind(ep.SUBNET_ALLOCATE, subnets.allocate),
            Route.bind(ep.SUBNET_ALLOCATE_MANY, subnets.allocate_many),
            Route.bind(ep.SUBNET_GET, subnets.get),
            Route.bind(ep.SUBNET_LIST, subnets.list_),
            Route.bind(ep.SUBNET_UPDATE, subnets.update),
            Route.bind(ep.SUBNET_RELEASE, subnets.release),
            Route.bind(ep.IP_ALLOCATE, ips.allocate),
            Route.bind(ep.IP_ALLOCATE_MANY, ips.allocate_many),
            Route.bind(ep.IP_RELEASE, ips.release),
            Route.bind(ep.IP_LIST, ips.list_),
            Route.bind(ep.RBAC_POLICY.create, rbac.create),
            Route.bind(ep.RBAC_POLICY.get, rbac.get),
            Route.bind(ep.RBAC_POLICY.list, rbac.list_),
            Route.bind(ep.RBAC_POLICY.update, rbac.update),
            Route.bind(ep.RBAC_POLICY.delete, rbac.delete),
        ],
        IPAM_ENDPOINTS,
    )
