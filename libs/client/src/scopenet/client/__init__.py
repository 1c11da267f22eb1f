"""A typed async client of scopenet for Python systems (docs/client.md).

``Client`` sends the commands of ``scopenet.contracts`` (``ipam_endpoints``, ``topology_endpoints``)
over NATS and returns their reply models; a refused command raises the contracts' typed errors
(``NotFound`` 404, ``Conflict`` 409, ... with Neutron's ``type``; ``TransientError`` 503: retry).
``Client.events`` reads the JetStream events as CloudEvents with their contract model decoded.
It depends on ``scopenet-contracts`` and ``nats-py`` only.
"""

from __future__ import annotations

from scopenet.client.commands import Client, Command, Resource
from scopenet.client.events import EventStream, Received
from scopenet.contracts.errors import (
    BadRequest,
    Conflict,
    DomainError,
    InternalError,
    InvalidInput,
    NotAuthorized,
    NotFound,
    PreconditionFailed,
    TransientError,
)

__all__ = [
    "BadRequest",
    "Client",
    "Command",
    "Conflict",
    "DomainError",
    "EventStream",
    "InternalError",
    "InvalidInput",
    "NotAuthorized",
    "NotFound",
    "PreconditionFailed",
    "Received",
    "Resource",
    "TransientError",
]
