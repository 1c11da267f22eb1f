"""This service alone, on the URLs in ``SCOPENET_*`` (``python -m scopenet.services.l3_agent``)."""

from __future__ import annotations

from scopenet.runtime.process import run_service
from scopenet.runtime.settings import load_or_exit
from scopenet.services.l3_agent.app import l3_agent_service
from scopenet.services.l3_agent.settings import AgentSettings


def main() -> None:
    run_service(l3_agent_service, load_or_exit(AgentSettings), needs_database=False)


if __name__ == "__main__":
    main()
