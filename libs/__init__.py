"""scopenet: Neutron-style address scopes as NATS services.

This directory is the ``scopenet`` package (see ``pyproject.toml``). Its layers, checked by
import-linter: ``errors`` < ``contracts`` < pure logic (``ipam``, ``settings``, ``log``) <
adapters (``bus``, ``store``, ``infra``, ``health``) < ``scopenet.services`` (in ``services/``).
"""
