"""Byte-exact builders for frames and capture files, for the capture-layer tests.

Written with `struct` so that tests can make what other writers cannot: nanosecond and
big-endian pcap, several pcapng sections and interfaces, simple and obsolete packet blocks,
damaged lengths and files cut short. Checksums are left zero (nothing here verifies them).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")


def tcp(
    sport: int = 40000,
    dport: int = 25,
    seq: int = 1000,
    ack: int = 0,
    flags: int = 0x18,
    window: int = 65535,
    options: bytes = b"",
    payload: bytes = b"",
    data_offset: int | None = None,
) -> bytes:
    """A TCP header (options padded with EOL to 4 bytes) followed by `payload`."""
    options = options + b"\x00" * (-len(options) % 4)
    words = data_offset if data_offset is not None else (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, words << 4, flags, window, 0, 0)
    return header + options + payload


def ts_option(tsval: int, tsecr: int) -> bytes:
    """NOP NOP TS: the usual option block of a data segment (RFC 7323)."""
    return struct.pack("!BBBBII", 1, 1, 8, 10, tsval, tsecr)


def syn_options(mss: int, wscale: int, tsval: int) -> bytes:
    """MSS, SACK-permitted, TS, NOP, WS: what Linux sends on a SYN."""
    return (
        struct.pack("!BBH", 2, 4, mss)
        + b"\x04\x02"
        + struct.pack("!BBII", 8, 10, tsval, 0)
        + b"\x01"
        + struct.pack("!BBB", 3, 3, wscale)
    )


def ipv4(
    payload: bytes,
    src: str = "192.0.2.1",
    dst: str = "198.51.100.2",
    proto: int = 6,
    ttl: int = 64,
    ident: int = 4242,
    frag: int = 0x4000,
    options: bytes = b"",
    total: int | None = None,
    version_ihl: int | None = None,
) -> bytes:
    """An IPv4 header (options padded to 4 bytes) followed by `payload`."""
    options = options + b"\x00" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    vihl = version_ihl if version_ihl is not None else 0x40 | ihl
    length = total if total is not None else ihl * 4 + len(payload)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        vihl,
        0,
        length,
        ident,
        frag,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + options + payload


def ipv6(
    payload: bytes,
    src: str = "2001:db8::1",
    dst: str = "2001:db8:0:1::25",
    nh: int = 6,
    hlim: int = 64,
    plen: int | None = None,
) -> bytes:
    length = len(payload) if plen is None else plen
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        length,
        nh,
        hlim,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )
    return header + payload


def ext_header(nh: int, units: int = 0) -> bytes:
    """Hop-by-hop, routing or destination options header of (units + 1) * 8 bytes (PadN)."""
    size = (units + 1) * 8
    return bytes((nh, units, 1, size - 4)) + b"\x00" * (size - 4)


def ah_header(nh: int) -> bytes:
    """An AH header with a 12-byte ICV: 24 bytes, length field 4 (RFC 4302 §2.2)."""
    return bytes((nh, 4, 0, 0)) + struct.pack("!II", 0x1000, 1) + b"\xaa" * 12


def frag6(nh: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", nh, 0, (offset & 0xFFF8) | int(more), ident)


def ether(
    payload: bytes,
    ethertype: int = ETH_IPV4,
    src: bytes = CLIENT_MAC,
    dst: bytes = SERVER_MAC,
    vlans: tuple[tuple[int, int], ...] = (),
) -> bytes:
    """Ethernet II with an optional stack of (TPID, VLAN id) tags, outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return dst + src + tags + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, protocol: int = ETH_IPV4, addr: bytes = CLIENT_MAC) -> bytes:
    """LINKTYPE_LINUX_SLL header."""
    return struct.pack("!HHH8sH", 0, 1, len(addr), addr, protocol) + payload


def sll2(payload: bytes, protocol: int = ETH_IPV4, addr: bytes = CLIENT_MAC) -> bytes:
    """LINKTYPE_LINUX_SLL2 header."""
    return struct.pack("!HHIHBB8s", protocol, 0, 3, 1, 0, len(addr), addr) + payload


def null(payload: bytes, family: int, order: str = "<") -> bytes:
    """LINKTYPE_NULL (host order, either) / LINKTYPE_LOOP (order ">") header."""
    return struct.pack(order + "I", family) + payload


@dataclass(frozen=True)
class Rec:
    """One packet to write: its bytes, timestamp and (if cut) original length."""

    data: bytes
    ts: float = 1_700_000_000.0
    origlen: int | None = None


def pcap(
    records: list[Rec],
    link_type: int = 1,
    order: str = "<",
    nano: bool = False,
    snaplen: int = 65535,
    link_field: int | None = None,
) -> bytes:
    """A classic pcap file."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    field = link_type if link_field is None else link_field
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, field)]
    scale = 1_000_000_000 if nano else 1_000_000
    for rec in records:
        units = round(rec.ts * scale)
        sec, frac = divmod(units, scale)
        orig = len(rec.data) if rec.origlen is None else rec.origlen
        out.append(struct.pack(order + "IIII", sec, frac, len(rec.data), orig))
        out.append(rec.data)
    return b"".join(out)


# ---- pcapng ----


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def end_of_options(order: str = "<") -> bytes:
    return struct.pack(order + "HH", 0, 0)


def block(btype: int, body: bytes, order: str = "<", length: int | None = None) -> bytes:
    """A pcapng block: type, total length, body (padded), total length again."""
    body = body + b"\x00" * (-len(body) % 4)
    total = 12 + len(body)
    lead = total if length is None else length
    return struct.pack(order + "II", btype, lead) + body + struct.pack(order + "I", total)


def shb(order: str = "<", options: bytes = b"", major: int = 1) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1) + options
    return block(0x0A0D0D0A, body, order)


def idb(
    link_type: int = 1,
    snaplen: int = 0,
    order: str = "<",
    tsresol: int | None = None,
    tsoffset: int | None = None,
    fcslen: int | None = None,
    name: bytes | None = None,
) -> bytes:
    opts = b""
    if name is not None:
        opts += option(2, name, order)
    if tsresol is not None:
        opts += option(9, bytes((tsresol,)), order)
    if tsoffset is not None:
        opts += option(14, struct.pack(order + "q", tsoffset), order)
    if fcslen is not None:
        opts += option(13, bytes((fcslen,)), order)
    if opts:
        opts += end_of_options(order)
    return block(1, struct.pack(order + "HHI", link_type, 0, snaplen) + opts, order)


def epb(
    data: bytes,
    units: int,
    iface: int = 0,
    order: str = "<",
    origlen: int | None = None,
    comment: bytes | None = None,
) -> bytes:
    """Enhanced Packet Block; `units` is the timestamp in the interface's resolution."""
    orig = len(data) if origlen is None else origlen
    body = struct.pack(order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), orig)
    body += data + b"\x00" * (-len(data) % 4)
    if comment is not None:
        body += option(1, comment, order) + end_of_options(order)
    return block(6, body, order)


def opb(data: bytes, units: int, iface: int = 0, order: str = "<") -> bytes:
    """Obsolete Packet Block (pcapng Appendix A)."""
    body = struct.pack(
        order + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
    )
    return block(2, body + data, order)


def spb(data: bytes, origlen: int | None = None, order: str = "<") -> bytes:
    """Simple Packet Block: original length, then the data (interface 0, no timestamp)."""
    orig = len(data) if origlen is None else origlen
    return block(3, struct.pack(order + "I", orig) + data, order)


def nrb(order: str = "<") -> bytes:
    """A Name Resolution Block with one IPv4 record."""
    record = struct.pack(order + "HH", 1, 4 + 12) + bytes((192, 0, 2, 1)) + b"mail.test\x00\x00\x00"
    return block(4, record + struct.pack(order + "HH", 0, 0), order)


def isb(order: str = "<") -> bytes:
    """An Interface Statistics Block for interface 0."""
    return block(5, struct.pack(order + "III", 0, 0, 0), order)


def custom_block(order: str = "<") -> bytes:
    """A Custom Block that may be copied (PEN 32473, the documentation PEN)."""
    return block(0x00000BAD, struct.pack(order + "I", 32473) + b"opaque data", order)


# ---- ready-made segments ----


def smtp_frame(
    payload: bytes = b"EHLO client.example\r\n", seq: int = 1000, sport: int = 40000
) -> bytes:
    """An Ethernet/IPv4/TCP frame client → server carrying `payload` with a TS option."""
    return ether(ipv4(tcp(sport=sport, seq=seq, options=ts_option(7, 9), payload=payload)))
