"""Floating IPs: the floating port through the port saga, and the association with a fixed port."""
