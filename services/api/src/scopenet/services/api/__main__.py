"""This service alone, on the URLs in ``SCOPENET_*``: ``python -m scopenet.services.api`` or ``scopenet-api``."""

from __future__ import annotations

from scopenet.runtime.process import run_service
from scopenet.runtime.settings import load_or_exit
from scopenet.services.api.app import api_service
from scopenet.services.api.settings import ApiSettings


def main() -> None:
    run_service(api_service, load_or_exit(ApiSettings), needs_database=False)


if __name__ == "__main__":
    main()
