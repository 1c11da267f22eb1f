"""This service alone, on the URLs in ``SCOPENET_*``: ``python -m scopenet.services.ipam`` or ``scopenet-ipam``."""

from __future__ import annotations

from scopenet.runtime.process import run_service
from scopenet.runtime.settings import load_or_exit
from scopenet.services.ipam.app import ipam_service
from scopenet.services.ipam.settings import IpamSettings


def main() -> None:
    run_service(ipam_service, load_or_exit(IpamSettings), needs_database=True)


if __name__ == "__main__":
    main()
