"""``scopenet demo``: the seed document's walkthrough, end to end, on an embedded stack."""
