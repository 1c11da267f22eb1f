"""Port forwardings of floating IPs: protocol and ports of a floating address DNATed to an internal one."""
