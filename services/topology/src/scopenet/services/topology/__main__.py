"""This service alone, on the URLs in ``SCOPENET_*`` (``python -m scopenet.services.topology``)."""

from __future__ import annotations

from scopenet.runtime.process import run_service
from scopenet.runtime.settings import load_or_exit
from scopenet.services.topology.app import topology_service
from scopenet.services.topology.settings import TopologySettings


def main() -> None:
    run_service(topology_service, load_or_exit(TopologySettings), needs_database=True)


if __name__ == "__main__":
    main()
