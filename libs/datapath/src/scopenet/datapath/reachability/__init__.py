"""Why can (or can't) A reach B: the kernel's verdict for one packet, computed from the model (pure).

``explain(model, resolve(model, a), resolve(model, b))`` follows the first packet through the router
as ``scopenet.datapath.nft`` renders its rules, and says what happens (``routed``, ``snat``,
``dnat``, ``dropped``, ``no_route``), the addresses after NAT, the hops, every blocker as a stable
reason code, and fixes. ``edge_verdict`` is the same rule for one scope crossing, for maps.
"""

from scopenet.datapath.reachability.model import (
    Decision,
    Endpoint,
    Explanation,
    Hop,
    Model,
    Network,
    Pool,
    Port,
    Reason,
    Router,
    Subnet,
    UnknownEndpoint,
    Verdict,
    resolve,
)
from scopenet.datapath.reachability.verdict import edge_verdict, explain

__all__ = [
    "Decision",
    "Endpoint",
    "Explanation",
    "Hop",
    "Model",
    "Network",
    "Pool",
    "Port",
    "Reason",
    "Router",
    "Subnet",
    "UnknownEndpoint",
    "Verdict",
    "edge_verdict",
    "explain",
    "resolve",
]
