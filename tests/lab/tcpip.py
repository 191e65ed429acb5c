"""Decode, edit and build IPv4/TCP packets as raw bytes, for the lab's in-line rewriter.

What it does: reads the fields the rewriter needs from an IPv4 packet carrying TCP, produces a
copy with new sequence/acknowledgment numbers, shifted SACK blocks and a same-length or new
payload (checksums recomputed), and builds bare RST segments.
What it does not do: IP options beyond skipping them, fragments (reported as not TCP), IPv6,
or any policy decision.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# RFC 791 §3.1: version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol,
# header checksum, source, destination.
IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
IPV4_MIN_HEADER_LEN = 20
IPV4_MORE_FRAGMENTS = 0x2000
IPV4_FRAGMENT_OFFSET_MASK = 0x1FFF
IPPROTO_TCP = 6

# RFC 9293 §3.1: ports, sequence number, acknowledgment number, data offset/flags, window,
# checksum, urgent pointer.
TCP_HEADER = struct.Struct("!HHIIHHHH")
TCP_MIN_HEADER_LEN = 20
TCP_CHECKSUM_OFFSET = 16

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

# RFC 9293 §3.1 option kinds; RFC 2018 §3 SACK: kind 5, length 2 + 8n, n (left, right) edges.
TCP_OPT_END = 0
TCP_OPT_NOP = 1
TCP_OPT_SACK = 5

SEQ_MODULUS = 2**32


def add_seq(value: int, delta: int) -> int:
    """Sequence-number arithmetic, RFC 9293 §3.4: modulo 2**32."""
    return (value + delta) % SEQ_MODULUS


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones'-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_to_bytes(address: str) -> bytes:
    return bytes(int(part) for part in address.split("."))


def _ip_to_str(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


@dataclass(frozen=True, slots=True)
class TcpPacket:
    """One IPv4 packet carrying a TCP segment, decoded."""

    raw: bytes
    """The whole packet as received."""
    ip_header_len: int
    """Bytes of IPv4 header, options included."""
    tcp_header_len: int
    """Bytes of TCP header, options included."""
    src: str
    """Source address, dotted quad."""
    dst: str
    """Destination address, dotted quad."""
    ttl: int
    """IPv4 time to live."""
    ip_id: int
    """IPv4 identification."""
    sport: int
    """TCP source port."""
    dport: int
    """TCP destination port."""
    seq: int
    """Sequence number."""
    ack: int
    """Acknowledgment number (meaningful when ACK is set)."""
    flags: int
    """TCP flag bits (FIN=1, SYN=2, RST=4, PSH=8, ACK=16, ...)."""
    payload: bytes
    """Segment data."""

    @property
    def options(self) -> bytes:
        start = self.ip_header_len + TCP_MIN_HEADER_LEN
        return self.raw[start : self.ip_header_len + self.tcp_header_len]

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    @property
    def seq_space(self) -> int:
        """Sequence numbers this segment consumes: data, plus one each for SYN and FIN."""
        return len(self.payload) + self.has(TCP_SYN) + self.has(TCP_FIN)


def parse(raw: bytes) -> TcpPacket | None:
    """Decode an IPv4/TCP packet; None for anything else (other protocols, fragments, junk)."""
    if len(raw) < IPV4_MIN_HEADER_LEN:
        return None
    ver_ihl, _tos, total_len, ip_id, frag, ttl, proto, _csum, src, dst = IPV4_HEADER.unpack_from(
        raw
    )
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or proto != IPPROTO_TCP or ihl < IPV4_MIN_HEADER_LEN:
        return None
    if frag & (IPV4_MORE_FRAGMENTS | IPV4_FRAGMENT_OFFSET_MASK):
        return None
    total_len = min(total_len, len(raw))
    if total_len < ihl + TCP_MIN_HEADER_LEN:
        return None
    sport, dport, seq, ack, off_flags, _win, _tcsum, _urg = TCP_HEADER.unpack_from(raw, ihl)
    thl = (off_flags >> 12) * 4
    if thl < TCP_MIN_HEADER_LEN or ihl + thl > total_len:
        return None
    return TcpPacket(
        raw=bytes(raw[:total_len]),
        ip_header_len=ihl,
        tcp_header_len=thl,
        src=_ip_to_str(src),
        dst=_ip_to_str(dst),
        ttl=ttl,
        ip_id=ip_id,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=off_flags & 0x01FF,
        payload=bytes(raw[ihl + thl : total_len]),
    )


def shift_sack_blocks(options: bytes, delta: int) -> bytes:
    """Return TCP options with every SACK block edge moved by `delta` (mod 2**32).

    Malformed option lists are returned unchanged: the rewriter must never make a packet worse.
    """
    out = bytearray(options)
    i = 0
    while i < len(out):
        kind = out[i]
        if kind == TCP_OPT_END:
            break
        if kind == TCP_OPT_NOP:
            i += 1
            continue
        if i + 1 >= len(out):
            return options
        length = out[i + 1]
        if length < 2 or i + length > len(out):
            return options
        if kind == TCP_OPT_SACK and (length - 2) % 8 == 0:
            for edge in range(i + 2, i + length, 4):
                (value,) = struct.unpack_from("!I", out, edge)
                struct.pack_into("!I", out, edge, add_seq(value, delta))
        i += length
    return bytes(out)


def _tcp_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_TCP, len(segment))
    return internet_checksum(pseudo + segment)


def _finish(ip_header: bytearray, tcp: bytearray) -> bytes:
    """Set lengths and both checksums; return the packet."""
    struct.pack_into("!H", ip_header, 2, len(ip_header) + len(tcp))
    struct.pack_into("!H", ip_header, 10, 0)
    struct.pack_into("!H", ip_header, 10, internet_checksum(bytes(ip_header)))
    struct.pack_into("!H", tcp, TCP_CHECKSUM_OFFSET, 0)
    csum = _tcp_checksum(bytes(ip_header[12:16]), bytes(ip_header[16:20]), bytes(tcp))
    struct.pack_into("!H", tcp, TCP_CHECKSUM_OFFSET, csum)
    return bytes(ip_header + tcp)


def rewrite(
    packet: TcpPacket,
    *,
    seq_delta: int = 0,
    ack_delta: int = 0,
    sack_delta: int = 0,
    payload: bytes | None = None,
) -> bytes:
    """A copy of `packet` with shifted numbers and, optionally, another payload.

    The acknowledgment number is shifted only when ACK is set (otherwise the field is not a
    sequence number). Checksums are recomputed.
    """
    ip_header = bytearray(packet.raw[: packet.ip_header_len])
    tcp_header = bytearray(
        packet.raw[packet.ip_header_len : packet.ip_header_len + packet.tcp_header_len]
    )
    struct.pack_into("!I", tcp_header, 4, add_seq(packet.seq, seq_delta))
    if packet.has(TCP_ACK):
        struct.pack_into("!I", tcp_header, 8, add_seq(packet.ack, ack_delta))
    if sack_delta and packet.tcp_header_len > TCP_MIN_HEADER_LEN:
        tcp_header[TCP_MIN_HEADER_LEN:] = shift_sack_blocks(packet.options, sack_delta)
    body = packet.payload if payload is None else payload
    return _finish(ip_header, tcp_header + body)


def build_segment(
    *,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    options: bytes = b"",
    window: int = 65535,
    ttl: int = 64,
    ip_id: int = 0,
) -> bytes:
    """An IPv4/TCP packet (DF clear, no IP options); `options` padded to 32-bit words."""
    options = options + bytes(-len(options) % 4)
    ip_header = bytearray(
        IPV4_HEADER.pack(
            0x45, 0, 0, ip_id, 0, ttl, IPPROTO_TCP, 0, _ip_to_bytes(src), _ip_to_bytes(dst)
        )
    )
    data_offset = (TCP_MIN_HEADER_LEN + len(options)) // 4
    tcp = bytearray(
        TCP_HEADER.pack(sport, dport, seq, ack, (data_offset << 12) | flags, window, 0, 0)
    )
    return _finish(ip_header, tcp + options + payload)


def build_rst(
    *,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    ttl: int,
    ip_id: int,
) -> bytes:
    """A bare RST+ACK segment (no options, window 0)."""
    return build_segment(
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=TCP_RST | TCP_ACK,
        window=0,
        ttl=ttl,
        ip_id=ip_id,
    )
