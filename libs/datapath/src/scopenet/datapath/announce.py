"""The frames a port sends to say "I am here": gratuitous ARP (IPv4), unsolicited NA (IPv6).

Built whole, Ethernet header included, so they go out through a packet socket bound to the port:
no address needs to have finished duplicate address detection, and nothing depends on the
namespace's routes. What they are for is in ``scopenet.datapath.model.Announce``.
"""

from __future__ import annotations

import ipaddress
import struct

BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ETH_ARP, ETH_IPV6 = 0x0806, 0x86DD
ICMPV6, NA = 58, 136
NA_ROUTER, NA_OVERRIDE = 0x80000000, 0x20000000


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"invalid MAC address {mac!r}")
    return raw


def gratuitous_arp(mac: str, ip: str) -> bytes:
    """An ARP request for ``ip`` from ``ip`` (Linux's ``arp_notify`` form), broadcast."""
    src, addr = mac_bytes(mac), ipaddress.IPv4Address(ip).packed
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src, addr, b"\0" * 6, addr)
    return BROADCAST + src + struct.pack("!H", ETH_ARP) + arp


def unsolicited_na(mac: str, ip: str) -> bytes:
    """A neighbour advertisement for ``ip`` (router, override; with the target link-layer
    address) from ``ip`` to all nodes, hop limit 255 as RFC 4861 requires."""
    src_mac, target = mac_bytes(mac), ipaddress.IPv6Address(ip)
    option = struct.pack("!BB6s", 2, 1, src_mac)  # target link-layer address, length 1 (8 bytes)
    body = struct.pack("!BBHI16s", NA, 0, 0, NA_ROUTER | NA_OVERRIDE, target.packed) + option
    pseudo = target.packed + ALL_NODES.packed + struct.pack("!I3xB", len(body), ICMPV6)
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, len(body), ICMPV6, 255, target.packed, ALL_NODES.packed)
    return ALL_NODES_MAC + src_mac + struct.pack("!H", ETH_IPV6) + ipv6 + body


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frames(mac: str, addresses: tuple[str, ...]) -> list[bytes]:
    return [gratuitous_arp(mac, a) if ":" not in a else unsolicited_na(mac, a) for a in addresses]
