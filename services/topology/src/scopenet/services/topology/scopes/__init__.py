"""The mirror of IPAM's pools and address scopes, and what a pool changing scope republishes."""
