"""Network RBAC entries (``access_as_shared``, ``access_as_external``); pool and scope RBAC is IPAM's."""
