"""The Neutron v2.0 wire-compatible HTTP API: a stateless gateway onto the services' NATS commands."""
