"""The BGP speaker: BIRD 2 announcing what topology's ``BgpSpeakerSpec`` stream says.

It runs inside the L3 agent's process (``SCOPENET_AGENT_BGP=1``), in the agent's host namespace:
one BIRD per host, configured from the specs, health in the agent's ``/readyz``.
"""
