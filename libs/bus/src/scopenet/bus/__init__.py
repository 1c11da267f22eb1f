"""NATS adapters: command serving (nats.micro), command calls, JetStream and the outbox relay."""
