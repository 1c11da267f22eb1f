"""Repairs what a crash between a topology write and an IPAM call left behind."""
