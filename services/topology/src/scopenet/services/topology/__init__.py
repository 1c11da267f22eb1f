"""The topology service: networks, subnets, ports, routers, floating IPs, network RBAC, L3 scheduling.

Owns the ``topology`` schema; reached only through ``scopenet.v1.topology.*`` commands; calls IPAM
over NATS for every prefix and address (never its tables); announces changes on
``scopenet.v1.evt.*`` and publishes each router's RouterSpec to ``SCOPENET_ROUTERS``, all through
the outbox.
"""
