"""The declared header layouts are the ones on the wire: every field of every table reads, with its
offset and `struct` format, the value scapy (an independent implementation) put there; the tables
cover their headers byte for byte; and the readers built from them read those fields."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from analyzer.capture import decode, layout, pcap

MAC = "02:11:22:33:44:55"
PEER_MAC = "02:66:77:88:99:aa"


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ipv4_fields(h: Any) -> dict[str, Any]:
    return {
        "version_ihl": h.version << 4 | h.ihl,
        "type_of_service": h.tos,
        "total_length": h.len,
        "identification": h.id,
        "flags_fragment_offset": int(h.flags) << 13 | h.frag,
        "ttl": h.ttl,
        "protocol": h.proto,
        "checksum": h.chksum,
        "source": ip4(h.src),
        "destination": ip4(h.dst),
    }


def ipv6_fields(h: Any) -> dict[str, Any]:
    return {
        "version_class_flow": h.version << 28 | h.tc << 20 | h.fl,
        "payload_length": h.plen,
        "next_header": h.nh,
        "hop_limit": h.hlim,
        "source": ip6(h.src),
        "destination": ip6(h.dst),
    }


def tcp_fields(h: Any) -> dict[str, Any]:
    return {
        "source_port": h.sport,
        "destination_port": h.dport,
        "sequence": h.seq,
        "acknowledgment": h.ack,
        "data_offset": h.dataofs << 4 | h.reserved << 1 | (int(h.flags) >> 8),
        "flags": int(h.flags) & 0xFF,
        "window": h.window,
        "checksum": h.chksum,
        "urgent_pointer": h.urgptr,
    }


TCP_SEGMENT = TCP(
    sport=40123,
    dport=25,
    seq=0xDEADBEEF,
    ack=0x01020304,
    flags="PA",
    window=29200,
    urgptr=7,
    options=[("NOP", None), ("NOP", None), ("Timestamp", (0x11223344, 0x55667788))],
) / Raw(b"EHLO x\r\n")

# (header, the packet scapy builds, the layer whose bytes the header is, that layer's fields as
# the table names them, computed from what scapy parses back)
CASES: list[tuple[layout.Header, Packet, type[Packet], Callable[[Any], dict[str, Any]]]] = [
    (
        layout.ETHERNET,
        Ether(dst=PEER_MAC, src=MAC) / IP() / TCP(),
        Ether,
        lambda h: {"destination": mac(h.dst), "source": mac(h.src), "ethertype": h.type},
    ),
    (
        layout.VLAN_TAG,
        Ether() / Dot1Q(prio=5, dei=1, vlan=1234) / IP() / TCP(),
        Dot1Q,
        lambda h: {"tci": h.prio << 13 | h.dei << 12 | h.vlan, "ethertype": h.type},
    ),
    (
        layout.LINUX_SLL,
        CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=mac(MAC) + b"\0\0") / IP() / TCP(),
        CookedLinux,
        lambda h: {
            "packet_type": h.pkttype,
            "arphrd_type": h.lladdrtype,
            "address_length": h.lladdrlen,
            "address": h.src,
            "protocol": h.proto,
        },
    ),
    (
        layout.LINUX_SLL2,
        CookedLinuxV2(ifindex=7, lladdrtype=1, pkttype=4, lladdrlen=6, src=mac(MAC) + b"\0\0")
        / IP()
        / TCP(),
        CookedLinuxV2,
        lambda h: {
            "protocol": h.proto,
            "reserved": h.reserved,
            "interface_index": h.ifindex,
            "arphrd_type": h.lladdrtype,
            "packet_type": h.pkttype,
            "address_length": h.lladdrlen,
            "address": h.src,
        },
    ),
    (
        layout.IPV4,
        IP(src="192.0.2.10", dst="198.51.100.20", id=0xBEEF, tos=0x28, ttl=57, flags="DF")
        / TCP_SEGMENT,
        IP,
        ipv4_fields,
    ),
    (
        layout.IPV4,
        IP(src="203.0.113.1", dst="10.9.8.7", id=3, flags="MF", frag=185, ttl=1) / TCP_SEGMENT,
        IP,
        ipv4_fields,
    ),
    (
        layout.IPV6,
        IPv6(src="2001:db8::1", dst="2001:db8:ffff::25", tc=0xB8, fl=0xABCDE, hlim=61)
        / TCP_SEGMENT,
        IPv6,
        ipv6_fields,
    ),
    (
        layout.IPV6_EXTENSION,
        IPv6() / IPv6ExtHdrHopByHop(options=[]) / TCP(),
        IPv6ExtHdrHopByHop,
        lambda h: {"next_header": h.nh, "length": h.len},
    ),
    (
        layout.IPV6_FRAGMENT,
        IPv6() / IPv6ExtHdrFragment(offset=1234, m=1, id=0x89ABCDEF) / TCP(),
        IPv6ExtHdrFragment,
        lambda h: {
            "next_header": h.nh,
            "reserved": h.res1,
            "offset_flags": h.offset << 3 | h.res2 << 1 | h.m,
            "identification": h.id,
        },
    ),
    (layout.TCP, IP() / TCP_SEGMENT, TCP, tcp_fields),
    (layout.TCP, IP() / TCP(flags="SEC", dataofs=5, reserved=3), TCP, tcp_fields),
]


@pytest.mark.parametrize(
    ("header", "packet", "layer", "expected"),
    CASES,
    ids=[f"{case[0].name}-{i}" for i, case in enumerate(CASES)],
)
def test_each_declared_field_reads_what_scapy_wrote(
    header: layout.Header,
    packet: Packet,
    layer: type[Packet],
    expected: Callable[[Any], dict[str, Any]],
) -> None:
    parsed = type(packet)(bytes(packet))  # scapy fills lengths and checksums on the way
    h = parsed[layer]
    raw = bytes(h)
    assert {f.name for f in header.fields} == set(expected(h))
    for f in header.fields:
        (value,) = struct.unpack_from("!" + f.format, raw, f.offset)
        assert value == expected(h)[f.name], f.name
    assert len(raw) - len(bytes(h.payload)) >= header.length  # fixed part, options aside


def test_the_timestamp_option_table_reads_what_scapy_wrote() -> None:
    raw = bytes(TCP_SEGMENT)
    at = layout.TCP_MIN_HEADER_LEN + 2  # after NOP NOP
    opt = layout.TCP_TIMESTAMP_OPTION
    values = [struct.unpack_from("!" + f.format, raw, at + f.offset)[0] for f in opt.fields]
    assert values == [decode.TCPOPT_TIMESTAMP, layout.TCPOPT_TIMESTAMP_LEN, 0x11223344, 0x55667788]


def test_the_loopback_header_is_one_address_family_word() -> None:
    (field,) = layout.BSD_LOOPBACK.fields
    assert field.offset == 0
    assert field.width == layout.NULL_HEADER_LEN == len(bytes(Loopback(type=2) / IP())) - 20


def test_the_pcap_record_table_reads_what_scapy_wrote(tmp_path: Path) -> None:
    pkt = Ether() / IP() / TCP() / Raw(b"x" * 33)
    pkt.time = 1_700_000_123.456789
    path = tmp_path / "one.pcap"
    wrpcap(str(path), [pkt])
    data = path.read_bytes()
    order = pcap.magic_kind(data[:4])
    assert order is not None
    at = pcap.FILE_HEADER_LEN
    got = {
        f.name: struct.unpack_from(order[0] + f.format, data, at + f.offset)[0]
        for f in layout.PCAP_RECORD.fields
    }
    assert got == {
        "timestamp_seconds": 1_700_000_123,
        "timestamp_fraction": 456789,
        "captured_length": len(pkt),
        "original_length": len(pkt),
    }


@pytest.mark.parametrize("header", layout.HEADERS, ids=[h.name for h in layout.HEADERS])
def test_each_table_covers_its_header_byte_for_byte(header: layout.Header) -> None:
    pos = 0
    for f in header.fields:
        assert f.offset == pos, f"{header.name}.{f.name}"
        pos += f.width
    assert pos == header.length
    assert header.spec


def test_a_reader_format_skips_the_fields_not_asked_for() -> None:
    assert layout.unpack_format(layout.IPV4, ("ttl", "destination")) == "8xB7xI"
    assert layout.unpack_format(layout.TCP, ("flags",), start=12, stop=20) == "xB6x"
    with pytest.raises(KeyError):
        layout.unpack_format(layout.TCP, ("ttl",))
