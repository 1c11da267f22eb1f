"""The IPAM service: address scopes, subnet pools, prefix and IP allocations, scope mark ids.

Owns the ``ipam`` schema; reached only through ``scopenet.v1.ipam.*`` commands; every change is
announced on ``scopenet.v1.evt.*`` through the outbox.
"""
