"""Who may see and change what, shared by the services that own resources (IPAM, topology)."""
