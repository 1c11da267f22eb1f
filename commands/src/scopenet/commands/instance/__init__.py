"""``scopenet instance``: test instances (a namespace standing in for a VM) on a running stack."""
