"""RouterSpecs: built purely from loaded rows, queued in the outbox in the caller's transaction."""
