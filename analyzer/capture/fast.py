"""The common case in one loop: classic pcap records of Ethernet frames carrying IPv4 and TCP.

Most large captures are tcpdump's classic pcap of an Ethernet interface, and most of their
frames are plain IPv4 (no options, not a fragment) carrying TCP. `read_segments` walks such a
file exactly as `pcap.read_records` does (same file tally, same record checks, same chunking) but
decodes those frames inline, with the decoder's shard and take hooks applied on the spot; every
other frame, and every segment the consumer does not take, goes through `Decoder`, so what comes
out is exactly what `pcap.read_records` with `Decoder.decode` gives. No other format or link
type is handled here.

Layouts: draft-ietf-opsawg-pcap §5 (record header), IEEE 802.3 (Ethernet II), RFC 791 §3.1
(IPv4), RFC 9293 §3.1 (TCP); the offsets are the named constants of `pcap` and `decode`.
"""

from __future__ import annotations

import struct
from collections.abc import Generator

from analyzer.capture.conversation import SHARD_MULTIPLIER
from analyzer.capture.decode import (
    ETH_HEADER_LEN,
    IPPROTO_TCP,
    IPV4_ADDRS_OFFSET,
    IPV4_FRAGMENT_BITS,
    IPV4_MIN_HEADER_LEN,
    TCP_MIN_HEADER_LEN,
    Decoder,
)
from analyzer.capture.pcap import MAX_RECORD_CAPLEN, RECORD_HEADER_LEN, PcapHeader, _why
from analyzer.capture.records import FileTally
from analyzer.capture.segment import CaptureAnomaly, Segment
from analyzer.capture.source import ChunkReader

ETHERTYPE_IPV4 = 0x0800
"""EtherType of IPv4 (RFC 894), the last field of an Ethernet II header."""
IPV4_PLAIN_VIHL = 0x45
"""Version 4, header length 5 words: an IPv4 header without options."""
FAST_MIN_FRAME = ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN + TCP_MIN_HEADER_LEN
"""Shortest frame the inline decoder looks at: every header complete."""
KEY_END = IPV4_ADDRS_OFFSET + 12
"""Without IP options the addresses (8 bytes) and the ports (4 bytes) are adjacent: the raw key
is the slice [IPV4_ADDRS_OFFSET, KEY_END) of the IPv4 header."""

_ETHER_IPV4_TCP = struct.Struct("!HBxHHHBBxxIIHHIIBB").unpack_from
"""The Ethernet II EtherType, an IPv4 header without options (vihl, total length, id,
flags/fragment, TTL, protocol, the two addresses), then the TCP header up to its flags (ports,
seq, ack, data offset, flags)."""
_MASK32 = 0xFFFFFFFF


def read_segments(
    chunks: ChunkReader,
    buf: bytes,
    header: PcapHeader,
    decoder: Decoder,
    tally: FileTally,
) -> Generator[Segment, None, None]:
    """Every segment of an Ethernet pcap file that `decoder` would return (see the module).

    `buf` holds the bytes read so far, starting with the file header.
    """
    tally.format = "pcap"
    tally.note_link_type(header.link_type)
    tally.ts_resolution = 1e-9 if header.nanosecond else 1e-6
    tally.snaplen = header.snaplen
    unpack = struct.Struct(header.byte_order + "IIII").unpack_from
    tick = 1e-9 if header.nanosecond else 1e-6
    link_type = header.link_type
    fcs = header.fcs_len
    hlen = RECORD_HEADER_LEN
    pos = 24
    n = len(buf)
    frame = 0
    first: float | None = None
    prev = lowest = highest = 0.0
    decode = decoder.decode
    segment = decoder.segment
    stats = decoder.stats
    file_no = decoder.file_no
    take = decoder.take
    shard = decoder.shard
    skipped = decoder.skipped
    shard_count = shard.count if shard is not None else 1
    shard_mine = shard.index if shard is not None else 0
    ether_ipv4_tcp = _ETHER_IPV4_TCP
    taken = 0
    due = decoder.skip_due
    """Skipped segments before this timestamp need not be reported (see `Skipped`)."""
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
            if end - start >= FAST_MIN_FRAME:
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
                ) = ether_ipv4_tcp(buf, p - 2)
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
                    if take is not None and take(
                        buf[p + IPV4_ADDRS_OFFSET : p + KEY_END],
                        ts,
                        frame,
                        file_no,
                        flags,
                        seq,
                        ack,
                        buf[pstart : ip_end if ip_end < end else end],
                        ip_end - pstart,
                        ttl,
                        ip_id,
                        buf[start + 6 : start + 12],
                    ):
                        taken += 1
                        continue
                    seg = segment(buf, start, end, ts, link_type, frame)
                    if seg is not None:
                        yield seg
                    continue
            decoder.skip_due = due  # the general path honours the same wish
            seg = decode(buf, start, end, ts, link_type, frame)
            due = decoder.skip_due
            if seg is not None:
                yield seg
    finally:
        stats.tcp_segments += taken
        decoder.skip_due = due
        tally.note_times(frame, first, prev, lowest, highest)
