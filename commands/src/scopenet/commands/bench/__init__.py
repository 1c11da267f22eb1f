"""Benchmarks: each drives a running stack the way a client would and prints JSON."""
