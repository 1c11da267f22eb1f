"""This service alone, on the URLs in ``SCOPENET_*``: ``python -m scopenet.services.ipam`` or ``scopenet-ipam``."""

from __future__ import annotations

from scopenet.runtime.process import run_service
from scopenet.runtime.settings import Settings
from scopenet.services.ipam.app import ipam_service


def main() -> None:
    run_service(ipam_service, Settings(), needs_database=True)


if __name__ == "__main__":
    main()
