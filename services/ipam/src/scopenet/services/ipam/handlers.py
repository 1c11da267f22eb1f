"""The IPAM routes: each endpoint of ``IPAM_ENDPOINTS`` bound to the method that serves it.

``Route.bind`` is typed: a method that does not take the endpoint's request model or does not return
its reply model is a type error. ``bound_once`` refuses to start if an endpoint is left unbound.
"""

from __future__ import annotations

import asyncpg

from scopenet.bus.micro import Route, bound_once
from scopenet.contracts import ipam_endpoints as ep
from scopenet.contracts.subjects import IPAM_ENDPOINTS
from scopenet.services.ipam import quotas
from scopenet.services.ipam.address_scopes import AddressScopes
from scopenet.services.ipam.ips import Ips
from scopenet.services.ipam.onboard import Onboarding
from scopenet.services.ipam.poolviews import PoolViews
from scopenet.services.ipam.rbac import Rbac
from scopenet.services.ipam.settings import IpamSettings
from scopenet.services.ipam.subnetpools import SubnetPools
from scopenet.services.ipam.subnets import Subnets
from scopenet.store.quotas import QuotaService


def routes(db: asyncpg.Pool, settings: IpamSettings | None = None) -> list[Route]:
    book = quotas.book((settings or IpamSettings()).quota_defaults())
    # ``list`` is a builtin worth keeping usable inside the classes: that verb's method is ``list_``.
    scopes, pools, subnets, ips = AddressScopes(db, book), SubnetPools(db, book), Subnets(db), Ips(db)
    rbac, quota = Rbac(db, book), QuotaService(db, book, event_resource=quotas.EVENT_RESOURCE, service="ipam")
    onboarding = Onboarding(db, pools)
    views = PoolViews(db)
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
            Route.bind(ep.SUBNETPOOL_ONBOARD_NETWORK_SUBNETS, onboarding.onboard_network_subnets),
            Route.bind(ep.SUBNETPOOL_USAGE, pools.usage),
            Route.bind(ep.SUBNETPOOL_SPACE, views.space),
            Route.bind(ep.SUBNETPOOL_HISTORY, views.history),
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
            Route.bind(ep.QUOTA.get, quota.get),
            Route.bind(ep.QUOTA.defaults, quota.defaults),
            Route.bind(ep.QUOTA.details, quota.details),
            Route.bind(ep.QUOTA.list, quota.list),
            Route.bind(ep.QUOTA.update, quota.update),
            Route.bind(ep.QUOTA.delete, quota.delete),
        ],
        IPAM_ENDPOINTS,
    )
