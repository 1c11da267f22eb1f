"""Subnets: a saga across topology and IPAM (prefix, gateway and pools are IPAM's decisions)."""
