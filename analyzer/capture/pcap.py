"""The classic libpcap file format: file header, then 16-byte record headers and frames.

Reads microsecond (magic a1b2c3d4) and nanosecond (a1b23c4d) files in either byte order, and
honours the FCS length that libpcap stores above the link type. Records are walked chunk by
chunk with a precompiled `struct` (byte by byte in the compiled build, where that is five times
faster: `COMPILED`); each frame is handed to a sink (see `records`). A file that
ends mid-record is reported through the tally, never raised.

The common case of large captures -- Ethernet frames carrying IPv4 without options, not a
fragment, and TCP -- is decoded inline when a `Decoder` comes along: the decoder's shard and take
hooks are applied on the spot, and every other frame, and every segment the consumer does not
take, goes through the decoder, so what comes out is exactly what the sink alone would give,
only sooner. That is the only decoding here; the offsets and formats are `layout`'s.

Layout: draft-ietf-opsawg-pcap §4 (file header) and §5 (packet record); libpcap pcap-common.h;
IEEE 802.3 (Ethernet II), RFC 791 §3.1 (IPv4), RFC 9293 §3.1 (TCP).

Why one long module: the record loop and its inline fast path for plain Ethernet/IPv4/TCP must
stay one compiled function's neighbours.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType
from typing import Final, cast

from analyzer.capture.conversation import SHARD_MULTIPLIER
from analyzer.capture.decode import (
    ETHERTYPE_IPV4,
    IPPROTO_TCP,
    IPV4_FRAGMENT_BITS,
    Decoder,
    SegmentTaker,
    Skipped,
)
from analyzer.capture.layout import (
    ETH_HEADER_LEN,
    ETH_SRC_OFFSET,
    ETH_TYPE_OFFSET,
    ETHERNET,
    IPV4,
    IPV4_ADDRS_OFFSET,
    IPV4_DST,
    IPV4_FRAG,
    IPV4_ID,
    IPV4_MIN_HEADER_LEN,
    IPV4_PROTOCOL,
    IPV4_READ,
    IPV4_SRC,
    IPV4_TOTAL_LEN,
    IPV4_TTL,
    IPV4_VIHL,
    MAC_LEN,
    PCAP_CAPLEN,
    PCAP_ORIGLEN,
    PCAP_RECORD,
    PCAP_RECORD_HEADER_LEN,
    PCAP_TS_FRAC,
    PCAP_TS_SEC,
    TCP,
    TCP_ACK,
    TCP_DATA_OFFSET,
    TCP_DPORT,
    TCP_FLAGS,
    TCP_MIN_HEADER_LEN,
    TCP_PORTS_LEN,
    TCP_SEQ,
    TCP_SPORT,
    unpack_format,
)
from analyzer.capture.records import FileTally, RecordSink, T
from analyzer.capture.segment import CaptureAnomaly, Segment
from analyzer.capture.source import ChunkReader
from analyzer.errors import CaptureError

MAGIC_USEC: Final = 0xA1B2C3D4
"""Magic of a pcap file with microsecond timestamps (draft-ietf-opsawg-pcap §4)."""
MAGIC_NSEC: Final = 0xA1B23C4D
"""Magic of a pcap file with nanosecond timestamps."""
MAGIC_KUZNETZOV: Final = 0xA1B2CD34
"""Alexey Kuznetzov's modified pcap: longer record headers, not supported."""

FILE_HEADER_LEN: Final = 24
"""magic(4) major(2) minor(2) thiszone(4) sigfigs(4) snaplen(4) linktype(4)."""
RECORD_HEADER_LEN: Final = PCAP_RECORD_HEADER_LEN
"""ts_sec(4) ts_frac(4) caplen(4) origlen(4): `layout.PCAP_RECORD`."""
SUPPORTED_MAJOR_VERSION: Final = 2

MAX_RECORD_CAPLEN: Final = 262144
"""Largest captured length accepted; as Wireshark (WTAP_MAX_PACKET_SIZE_STANDARD), a record
header claiming more means the file is damaged and the rest of it is not read."""

LT_LINKTYPE_MASK: Final = 0x0000FFFF
"""Link type proper: the low 16 bits of the header's link-type field (pcap-common.h)."""
LT_FCS_LENGTH_PRESENT: Final = 0x04000000
"""Set when the top 4 bits give the FCS length (pcap-common.h LT_FCS_LENGTH_PRESENT)."""
LT_FCS_LENGTH_SHIFT: Final = 28
"""FCS length field: bits 28-31, in 16-bit words (pcap-common.h LT_FCS_LENGTH)."""

IPV4_PLAIN_VIHL: Final = 0x45
"""Version 4, header length 5 words: an IPv4 header without options."""
INLINE_MIN_FRAME: Final = ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN + TCP_MIN_HEADER_LEN
"""Shortest frame decoded inline: every header complete."""
KEY_END: Final = IPV4_MIN_HEADER_LEN + TCP_PORTS_LEN
"""Without IP options the addresses (8 bytes) and the ports (4 bytes) are adjacent: the raw key
(`conversation`) is the slice [IPV4_ADDRS_OFFSET, KEY_END) of the IPv4 header."""
_ETHER_IPV4_TCP: Final = cast(
    Callable[
        [bytes, int],
        tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int],
    ],
    struct.Struct(
        "!"
        + unpack_format(ETHERNET, ("ethertype",), stop=ETH_HEADER_LEN)
        + unpack_format(
            IPV4,
            (*IPV4_READ, "source", "destination"),
            stop=IPV4_MIN_HEADER_LEN,
        )
        + unpack_format(
            TCP,
            (
                "source_port",
                "destination_port",
                "sequence",
                "acknowledgment",
                "data_offset",
                "flags",
            ),
        )
    ).unpack_from,
)
"""Read at the start of an Ethernet II frame: its EtherType, an IPv4 header without options
(vihl, total length, id, flags/fragment, TTL, protocol, the two addresses), then the TCP header
up to its flags (ports, seq, ack, data offset, flags). The fields are `layout`'s."""
_RECORD_HEADER_FORMAT: Final = unpack_format(
    PCAP_RECORD,
    ("timestamp_seconds", "timestamp_fraction", "captured_length", "original_length"),
)
"""The record header's fields, to follow the file's byte-order character."""
_MASK32: Final = 0xFFFFFFFF


def _ether_ipv4_tcp_bytewise(
    b: bytes, e: int
) -> tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int]:
    """`_ETHER_IPV4_TCP(b, e)`, read byte by byte at `layout`'s offsets.

    Compiled, this takes a fifth of the time `struct` takes, which builds a tuple of boxed
    integers; interpreted, five times longer. So `read_records` uses it when `COMPILED`. (The
    offsets plus a constant are folded into one constant when compiled.)"""
    i = e + ETH_HEADER_LEN
    t = i + IPV4_MIN_HEADER_LEN
    return (
        b[e + ETH_TYPE_OFFSET] << 8 | b[e + (ETH_TYPE_OFFSET + 1)],
        b[i + IPV4_VIHL],
        b[i + IPV4_TOTAL_LEN] << 8 | b[i + (IPV4_TOTAL_LEN + 1)],
        b[i + IPV4_ID] << 8 | b[i + (IPV4_ID + 1)],
        b[i + IPV4_FRAG] << 8 | b[i + (IPV4_FRAG + 1)],
        b[i + IPV4_TTL],
        b[i + IPV4_PROTOCOL],
        b[i + IPV4_SRC] << 24
        | b[i + (IPV4_SRC + 1)] << 16
        | b[i + (IPV4_SRC + 2)] << 8
        | b[i + (IPV4_SRC + 3)],
        b[i + IPV4_DST] << 24
        | b[i + (IPV4_DST + 1)] << 16
        | b[i + (IPV4_DST + 2)] << 8
        | b[i + (IPV4_DST + 3)],
        b[t + TCP_SPORT] << 8 | b[t + (TCP_SPORT + 1)],
        b[t + TCP_DPORT] << 8 | b[t + (TCP_DPORT + 1)],
        b[t + TCP_SEQ] << 24
        | b[t + (TCP_SEQ + 1)] << 16
        | b[t + (TCP_SEQ + 2)] << 8
        | b[t + (TCP_SEQ + 3)],
        b[t + TCP_ACK] << 24
        | b[t + (TCP_ACK + 1)] << 16
        | b[t + (TCP_ACK + 2)] << 8
        | b[t + (TCP_ACK + 3)],
        b[t + TCP_DATA_OFFSET],
        b[t + TCP_FLAGS],
    )


def _record_header_bytewise(b: bytes, p: int, big_endian: bool) -> tuple[int, int, int, int]:
    """The four fields of the record header at `b[p:]` (`layout.PCAP_RECORD`), read byte by
    byte (see `_ether_ipv4_tcp_bytewise`)."""
    if big_endian:
        return (
            b[p + PCAP_TS_SEC] << 24
            | b[p + (PCAP_TS_SEC + 1)] << 16
            | b[p + (PCAP_TS_SEC + 2)] << 8
            | b[p + (PCAP_TS_SEC + 3)],
            b[p + PCAP_TS_FRAC] << 24
            | b[p + (PCAP_TS_FRAC + 1)] << 16
            | b[p + (PCAP_TS_FRAC + 2)] << 8
            | b[p + (PCAP_TS_FRAC + 3)],
            b[p + PCAP_CAPLEN] << 24
            | b[p + (PCAP_CAPLEN + 1)] << 16
            | b[p + (PCAP_CAPLEN + 2)] << 8
            | b[p + (PCAP_CAPLEN + 3)],
            b[p + PCAP_ORIGLEN] << 24
            | b[p + (PCAP_ORIGLEN + 1)] << 16
            | b[p + (PCAP_ORIGLEN + 2)] << 8
            | b[p + (PCAP_ORIGLEN + 3)],
        )
    return (
        b[p + (PCAP_TS_SEC + 3)] << 24
        | b[p + (PCAP_TS_SEC + 2)] << 16
        | b[p + (PCAP_TS_SEC + 1)] << 8
        | b[p + PCAP_TS_SEC],
        b[p + (PCAP_TS_FRAC + 3)] << 24
        | b[p + (PCAP_TS_FRAC + 2)] << 16
        | b[p + (PCAP_TS_FRAC + 1)] << 8
        | b[p + PCAP_TS_FRAC],
        b[p + (PCAP_CAPLEN + 3)] << 24
        | b[p + (PCAP_CAPLEN + 2)] << 16
        | b[p + (PCAP_CAPLEN + 1)] << 8
        | b[p + PCAP_CAPLEN],
        b[p + (PCAP_ORIGLEN + 3)] << 24
        | b[p + (PCAP_ORIGLEN + 2)] << 16
        | b[p + (PCAP_ORIGLEN + 1)] << 8
        | b[p + PCAP_ORIGLEN],
    )


def _compiled() -> bool:
    """Whether this module runs compiled (mypyc): its functions are then builtins."""
    return not isinstance(_compiled, FunctionType)


COMPILED: Final = _compiled()
"""Read the hot fields byte by byte (`_ether_ipv4_tcp_bytewise`) rather than with `struct`."""


def magic_kind(magic: bytes) -> tuple[str, bool] | None:
    """Byte order ("<" or ">") and nanosecond flag for a pcap magic, or None if not pcap."""
    for order in ("<", ">"):
        (value,) = struct.unpack(order + "I", magic)
        if value == MAGIC_USEC:
            return order, False
        if value == MAGIC_NSEC:
            return order, True
    return None


def is_kuznetzov(magic: bytes) -> bool:
    return MAGIC_KUZNETZOV in (struct.unpack("<I", magic)[0], struct.unpack(">I", magic)[0])


@dataclass(frozen=True, slots=True)
class PcapHeader:
    """The fields of a pcap file header that reading needs."""

    byte_order: str
    """struct byte-order character: "<" or ">"."""
    nanosecond: bool
    version: tuple[int, int]
    snaplen: int
    link_type: int
    """Link type with the FCS bits removed."""
    fcs_len: int
    """Bytes of FCS at the end of each frame, to strip (0 when none is signalled)."""


def parse_header(head: bytes, path: Path) -> PcapHeader:
    """Parse the 24-byte file header at the start of `head`; raise CaptureError if unusable."""
    kind = magic_kind(head[:4])
    if kind is None:
        raise CaptureError(path, f"not a pcap file (magic 0x{head[:4].hex()})")
    order, nano = kind
    if len(head) < FILE_HEADER_LEN:
        raise CaptureError(
            path, f"pcap file header cut short ({len(head)} of {FILE_HEADER_LEN} bytes)"
        )
    _magic, major, minor, _zone, _sigfigs, snaplen, link_field = struct.unpack_from(
        order + "IHHiIII", head, 0
    )
    if major != SUPPORTED_MAJOR_VERSION:
        raise CaptureError(path, f"unsupported pcap version {major}.{minor}")
    fcs_len = 0
    if link_field & LT_FCS_LENGTH_PRESENT:
        fcs_len = 2 * (link_field >> LT_FCS_LENGTH_SHIFT)
    return PcapHeader(order, nano, (major, minor), snaplen, link_field & LT_LINKTYPE_MASK, fcs_len)


def read_records(
    chunks: ChunkReader,
    buf: bytes,
    header: PcapHeader,
    sink: RecordSink[T],
    tally: FileTally,
    inline: Decoder | None = None,
) -> Generator[T | Segment, None, None]:
    """Hand every record after the file header to `sink`, yielding what it returns.

    `buf` holds the bytes read so far, starting with the file header. With `inline` (the
    decoder whose `decode` is `sink`, for an Ethernet file), plain IPv4/TCP frames are decoded
    here (see the module).
    """
    tally.format = "pcap"
    tally.note_link_type(header.link_type)
    tally.ts_resolution = 1e-9 if header.nanosecond else 1e-6
    tally.snaplen = header.snaplen
    # Declared with the types of what it returns (as `_ETHER_IPV4_TCP`): then the compiled build
    # does native arithmetic on the fields.
    unpack = cast(
        Callable[[bytes, int], tuple[int, int, int, int]],
        struct.Struct(header.byte_order + _RECORD_HEADER_FORMAT).unpack_from,
    )
    big_endian = header.byte_order == ">"
    tick = 1e-9 if header.nanosecond else 1e-6
    link_type = header.link_type
    fcs = header.fcs_len
    hlen = RECORD_HEADER_LEN
    pos = FILE_HEADER_LEN
    n = len(buf)
    frame = 0
    first: float | None = None
    prev = lowest = highest = 0.0
    # The inline decoder's hooks, as locals for the loop.
    segment: RecordSink[Segment] = _nothing
    take: SegmentTaker | None = None
    skipped: Skipped = _no_skips
    file_no = shard_mine = 0
    shard_count = 1
    due = float("inf")
    """Skipped segments before this timestamp need not be reported (see `Skipped`)."""
    if inline is not None:
        segment, take, skipped = inline.segment, inline.take, inline.skipped
        file_no = inline.file_no
        if inline.shard is not None:
            shard_count, shard_mine = inline.shard.count, inline.shard.index
        due = inline.skip_due
    ether_ipv4_tcp = _ETHER_IPV4_TCP
    taken = 0
    try:
        while True:
            if n - pos < hlen:
                buf = chunks.refill(buf, pos, hlen)
                pos = 0
                n = len(buf)
                if n < hlen:
                    if n:
                        tally.stop(
                            CaptureAnomaly.TRUNCATED_RECORD,
                            f"file ends inside the record header after frame {frame}"
                            + _why(chunks),
                        )
                    elif chunks.error is not None:
                        tally.stop(CaptureAnomaly.TRUNCATED_RECORD, "read error" + _why(chunks))
                    break
            if COMPILED:
                sec, frac, caplen, origlen = _record_header_bytewise(buf, pos, big_endian)
            else:
                sec, frac, caplen, origlen = unpack(buf, pos)
            if caplen > MAX_RECORD_CAPLEN:
                tally.stop(
                    CaptureAnomaly.BAD_BLOCK,
                    f"record after frame {frame} claims {caplen} captured bytes "
                    f"(more than {MAX_RECORD_CAPLEN}); rest of file not read",
                )
                break
            start = pos + hlen
            end = start + caplen
            if end > n:
                buf = chunks.refill(buf, pos, hlen + caplen)
                pos = 0
                n = len(buf)
                start = hlen
                end = hlen + caplen
                if end > n:
                    tally.stop(
                        CaptureAnomaly.TRUNCATED_RECORD,
                        f"file ends inside the record after frame {frame} "
                        f"({n - hlen} of {caplen} bytes present)" + _why(chunks),
                    )
                    break
            frame += 1
            ts = sec + frac * tick
            if first is None:
                first = prev = lowest = highest = ts
                tally.first_ts = ts
            elif ts < prev:
                tally.backwards += 1
                if not tally.first_backwards_frame:
                    tally.first_backwards_frame = frame
                if ts < lowest:
                    lowest = ts
            elif ts > highest:
                highest = ts
            prev = ts
            if caplen < origlen:
                tally.snaplen_cut += 1
                if not tally.first_cut_frame:
                    tally.first_cut_frame = frame
            pos = end
            if fcs:
                end = start + max(0, min(caplen, origlen - fcs))
            # ---- inline: Ethernet II, IPv4 without options, not a fragment, TCP ----
            p = start + ETH_HEADER_LEN
            if inline is not None and end - start >= INLINE_MIN_FRAME:
                (
                    ethertype,
                    vihl,
                    total,
                    ip_id,
                    frag,
                    ttl,
                    proto,
                    src_ip,
                    dst_ip,
                    sport,
                    dport,
                    seq,
                    ack,
                    doff_byte,
                    flags,
                ) = _ether_ipv4_tcp_bytewise(buf, start) if COMPILED else ether_ipv4_tcp(buf, start)
                ip_end = p + total
                pstart = p + IPV4_MIN_HEADER_LEN + ((doff_byte >> 4) << 2)
                if (
                    ethertype == ETHERTYPE_IPV4
                    and vihl == IPV4_PLAIN_VIHL
                    and proto == IPPROTO_TCP
                    and not frag & IPV4_FRAGMENT_BITS
                    and doff_byte >= 0x50
                    and p + IPV4_MIN_HEADER_LEN + TCP_MIN_HEADER_LEN <= ip_end
                    and pstart <= ip_end
                ):
                    if (
                        shard_count > 1
                        and (
                            (((src_ip ^ dst_ip ^ sport ^ dport) * SHARD_MULTIPLIER) & _MASK32) >> 16
                        )
                        % shard_count
                        != shard_mine
                    ):
                        taken += 1
                        if ts >= due:
                            due = skipped(ts, file_no, frame)
                        continue
                    # Ethernet padding after the IP packet is not payload; options can run
                    # past a snaplen cut (never slice past the end: see docs/DESIGN.md).
                    cut = ip_end if ip_end < end else end
                    # Positional: keyword arguments would cost the interpreted build 5% (one
                    # call per packet).
                    if take is not None and take.take(
                        buf[p + IPV4_ADDRS_OFFSET : p + KEY_END],
                        ts,
                        frame,
                        file_no,
                        flags,
                        seq,
                        ack,
                        buf[pstart:cut] if pstart < cut else b"",
                        ip_end - pstart,
                        ttl,
                        ip_id,
                        buf[start + ETH_SRC_OFFSET : start + (ETH_SRC_OFFSET + MAC_LEN)],
                    ):
                        taken += 1
                        continue
                    seg = segment(buf, start, end, ts, link_type, frame)
                    if seg is not None:
                        yield seg
                    continue
            if inline is None:
                out = sink(buf, start, end, ts, link_type, frame)
            else:
                inline.skip_due = due  # the general path honours the same wish
                out = sink(buf, start, end, ts, link_type, frame)
                due = inline.skip_due
            if out is not None:
                yield out
    finally:
        if inline is not None:
            inline.stats.tcp_segments += taken
            inline.skip_due = due
        tally.note_times(frame, first, prev, lowest, highest)


def _nothing(buf: bytes, start: int, end: int, ts: float, link_type: int, frame: int) -> None:
    """The inline path's segment hook when there is no inline decoder (never called)."""


def _no_skips(ts: float, file_no: int, frame_no: int) -> float:
    """The inline path's `skipped` hook when there is no inline decoder (never called)."""
    return float("inf")


def _why(chunks: ChunkReader) -> str:
    return f" ({chunks.error})" if chunks.error else ""
