"""Ports: fixed-IP planning, the port saga shared with the L3 resources, the batched create."""
