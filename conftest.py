"""Settings every test of the workspace shares (each distribution's tests/ and the root tests/).

Hypothesis' per-example deadline measures wall time, which on a shared two-core machine says more
about the neighbours than about the code: the properties are checked, the clock is not.

The tests create far more than Neutron's default per-project quotas allow (ten routers, a hundred
networks) in a few projects, so every service a test starts, in this process or below it, defaults
to unlimited; the quota tests set the limits they check (docs/neutron.md#quotas).
"""

import os

from hypothesis import settings

settings.register_profile("scopenet", deadline=None)
settings.load_profile("scopenet")

UNLIMITED_QUOTAS = {
    f"SCOPENET_{name}": "-1"
    for name in (
        "IPAM_QUOTA_SUBNETPOOL",
        "IPAM_QUOTA_ADDRESS_SCOPE",
        "IPAM_QUOTA_RBAC_POLICY",
        "TOPOLOGY_QUOTA_NETWORK",
        "TOPOLOGY_QUOTA_SUBNET",
        "TOPOLOGY_QUOTA_PORT",
        "TOPOLOGY_QUOTA_ROUTER",
        "TOPOLOGY_QUOTA_FLOATINGIP",
        "TOPOLOGY_QUOTA_RBAC_POLICY",
    )
}
for _var, _value in UNLIMITED_QUOTAS.items():
    os.environ.setdefault(_var, _value)
