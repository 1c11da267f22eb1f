"""Routers: CRUD, the external gateway port, interfaces; overlap and interface rules."""
