"""Networks: CRUD, sharing and ``router:external`` (as wildcard RBAC entries), MTU rules."""
