"""BGP dynamic routing: what a speaker announces (pure; the daemon lives in services)."""
