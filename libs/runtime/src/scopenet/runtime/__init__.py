"""Process plumbing every scopenet service shares: settings, logging, health probes, signals, supervision."""
