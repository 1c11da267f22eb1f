"""The frames a port announces itself with: byte layouts a switch and a neighbour will accept."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from scopenet.datapath import announce

MAC = "fa:16:3e:00:01:01"


def test_gratuitous_arp_is_a_broadcast_request_for_its_own_address() -> None:
    frame = announce.gratuitous_arp(MAC, "198.51.100.1")
    assert len(frame) == 14 + 28
    dst, src, ethertype = frame[:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    assert dst == b"\xff" * 6 and src == bytes.fromhex("fa163e000101") and ethertype == 0x0806
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = struct.unpack("!HHBBH6s4s6s4s", frame[14:])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert sha == src and tha == b"\0" * 6
    assert spa == tpa == ipaddress.IPv4Address("198.51.100.1").packed


def test_unsolicited_na_to_all_nodes_with_a_valid_checksum() -> None:
    frame = announce.unsolicited_na(MAC, "2001:db8:80d2:c4d3::1")
    assert frame[:6] == bytes.fromhex("333300000001") and struct.unpack("!H", frame[12:14])[0] == 0x86DD
    ip, icmp = frame[14:54], frame[54:]
    _, length, nxt, hops, src, dst = struct.unpack("!IHBB16s16s", ip)
    target = ipaddress.IPv6Address("2001:db8:80d2:c4d3::1").packed
    assert (length, nxt, hops) == (len(icmp), 58, 255)  # RFC 4861: hop limit 255 or it is ignored
    assert src == target and dst == ipaddress.IPv6Address("ff02::1").packed
    kind, code, _, flags, tgt = struct.unpack("!BBHI16s", icmp[:24])
    assert (kind, code, tgt) == (136, 0, target)
    assert flags == 0xA0000000  # router, override (not solicited)
    assert icmp[24:] == struct.pack("!BB6s", 2, 1, bytes.fromhex("fa163e000101"))
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
    assert announce.checksum(pseudo + icmp) == 0  # the checksum field makes the sum come out right


def test_frames_choose_by_family_and_refuse_bad_macs() -> None:
    v4, v6 = announce.frames(MAC, ("203.0.113.1", "2001:db8::1"))
    assert v4[12:14] == b"\x08\x06" and v6[12:14] == b"\x86\xdd"
    with pytest.raises(ValueError, match="invalid MAC"):
        announce.gratuitous_arp("fa:16:3e", "203.0.113.1")
