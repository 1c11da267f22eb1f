"""What ``$SRV.STATS`` (``nats micro stats``) reports for our endpoints: the truth.

nats.micro counts a request, an error and its processing time around the endpoint's callback. Our
callback (``scopenet.bus.micro``) only starts a task and returns, and it never raises (errors are
sent as ADR-32 replies, not raised), so nats.micro would report every request as a success that
took microseconds. ``Tally`` counts instead where the work happens: a request when its reply has
gone out, its processing time from the moment its task starts (a free slot) to that reply, and an
error for every reply that carries one (``Nats-Service-Error-Code``), 4xx included, with
``last_error`` as ``<code>:<description>`` like nats.micro's own.

``TallyService`` is nats.micro's ``Service`` whose ``stats()`` (what answers ``$SRV.STATS``) reads
the tallies. Everything runs on the event loop, so the counters need no lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.micro.service import Service, ServiceConfig, ServiceStats


@dataclass
class Tally:
    """One endpoint's figures, in nats.micro's units (nanoseconds)."""

    num_requests: int = 0
    num_errors: int = 0
    processing_time: int = 0
    last_error: str = ""

    @property
    def average_processing_time(self) -> int:
        return self.processing_time // self.num_requests if self.num_requests else 0

    def replied(self, elapsed_ns: int) -> None:
        """A request answered (successfully or not) after ``elapsed_ns`` of work."""
        self.num_requests += 1
        self.processing_time += max(0, elapsed_ns)

    def failed(self, code: int, description: str) -> None:
        """The reply carried an error."""
        self.num_errors += 1
        self.last_error = f"{code}:{description}"


class TallyService(Service):
    """A nats.micro service whose STATS answer with ``tallies`` (endpoint name → ``Tally``)."""

    def __init__(self, nc: NATS, config: ServiceConfig) -> None:
        super().__init__(nc, config)
        self.tallies: dict[str, Tally] = {}

    def stats(self) -> ServiceStats:
        stats = super().stats()
        for ep in stats.endpoints:
            tally = self.tallies.get(ep.name, Tally())
            ep.num_requests = tally.num_requests
            ep.num_errors = tally.num_errors
            ep.processing_time = tally.processing_time
            ep.average_processing_time = tally.average_processing_time
            ep.last_error = tally.last_error
        return stats


async def start_service(nc: NATS, *, name: str, version: str, description: str) -> TallyService:
    """What ``nats.micro.add_service`` does, with our STATS."""
    service = TallyService(nc, ServiceConfig(name=name, version=version, description=description))
    await service.start()
    return service
