"""Commands the L3 agents serve, each agent on its own subject (``<subject>.<agent_id>``).

``sender`` names the field that picks the subject, as for the agents' own reports: the caller
(topology) sends to the agent hosting the router, and only that agent subscribes there.
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import reachability as reach
from scopenet.contracts.endpoint import Endpoint

KERNEL_RULE = Endpoint(
    "l3_agent",
    "kernel",
    "rule",
    reach.KernelRuleQuery,
    reach.KernelRule,
    "one nftables rule of a router this agent hosts, with its packet counter (the explainer's kernel evidence)",
    sender="agent_id",
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (KERNEL_RULE,)
