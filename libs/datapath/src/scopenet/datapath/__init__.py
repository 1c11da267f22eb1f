"""The L3 datapath, pure: RouterSpec → desired kernel state → plan against the observed state.

No I/O here (no netlink, no nftables, no asyncio): ``scopenet.netlink`` observes and applies,
``scopenet.services.l3_agent`` decides when.
"""

from scopenet.datapath.model import ObservedRouter, Plan, RouterState
from scopenet.datapath.plan import plan
from scopenet.datapath.port import DatapathPort
from scopenet.datapath.render import desired_state

__all__ = ["DatapathPort", "ObservedRouter", "Plan", "RouterState", "desired_state", "plan"]
