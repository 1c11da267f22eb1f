"""L3 agents: heartbeats and liveness, router scheduling, router status reports."""
