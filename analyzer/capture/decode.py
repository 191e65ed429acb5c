"""Decode one captured frame through link layer, IP and TCP into a `Segment`.

Link layers: Ethernet with any stack of 802.1Q / 802.1ad / QinQ tags, Linux cooked v1 and v2,
raw IP, BSD NULL and LOOP. Network: IPv4 (options, total-length trimming of Ethernet padding,
fragments) and IPv6 (hop-by-hop, routing, fragment, destination-options and AH extension
headers; AH after IPv4 too). Transport: TCP with the MSS, window-scale and timestamp options.
A total length of 0 (IPv4) or payload length of 0 (IPv6), as captures of segmentation-offload
traffic show, means "up to the end of the frame".

Only TCP becomes a `Segment`; every other frame is counted in `CaptureStats` (non-TCP, non-IP,
unknown link type, malformed), never raised. Fragments go through `FragmentReassembler`; the
rebuilt datagram is attributed to the frame that completed it. This module reads no files.

The decoder is the per-packet hot path, one method per layer (`Decoder.decode`): headers are
read at `layout`'s offsets, with `struct`s precompiled from its tables, and address text is
cached. Two optional hooks let a reader skip work:

- `shard`: decode only the conversations of one shard (see `conversation`); a TCP segment of
  another shard is counted, reported to `skipped` with its time and frame, and dropped.
- `take`: a `SegmentTaker` offered every TCP segment's header fields (and its raw key) before
  a `Segment` is built; when it takes the segment, no `Segment` is made. A flow table takes the
  segments of connections it already knows this way and leaves the rest to become `Segment`s.

Why one long module: one compiled decoder, a method per layer, whose methods call each other
directly; the header layouts live in `layout`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Final, TypeAlias, cast

from analyzer._common import FrameRef
from analyzer._quick import quick_constructor
from analyzer.capture.conversation import Shard, fold_addresses, shard_index
from analyzer.capture.fragments import (
    MAX_DATAGRAM_LEN,
    MAX_FRAMES_CITED,
    FragmentKey,
    FragmentReassembler,
    Reassembled,
)
from analyzer.capture.layout import (
    ETH_HEADER_LEN,
    ETH_SRC_OFFSET,
    ETH_TYPE_OFFSET,
    EXT_LENGTH,
    EXT_MIN_LEN,
    EXT_NEXT_HEADER,
    IPV4,
    IPV4_ADDR_LEN,
    IPV4_ADDRS_OFFSET,
    IPV4_MIN_HEADER_LEN,
    IPV4_READ,
    IPV6,
    IPV6_ADDR_LEN,
    IPV6_ADDRS_OFFSET,
    IPV6_FRAGMENT,
    IPV6_FRAGMENT_HEADER_LEN,
    IPV6_HEADER_LEN,
    MAC_LEN,
    NULL_FAMILY_OFFSET,
    NULL_HEADER_LEN,
    SLL2_ADDR_LEN_OFFSET,
    SLL2_ADDR_OFFSET,
    SLL2_HEADER_LEN,
    SLL2_PROTOCOL_OFFSET,
    SLL_ADDR_LEN_OFFSET,
    SLL_ADDR_OFFSET,
    SLL_HEADER_LEN,
    SLL_PROTOCOL_OFFSET,
    TCP,
    TCP_MIN_HEADER_LEN,
    TCP_PORTS_LEN,
    TCP_SPORT,
    TCP_TIMESTAMP_OPTION,
    TCPOPT_LENGTH_OFFSET,
    TCPOPT_TIMESTAMP_LEN,
    TS_VALUE_OFFSET,
    VLAN_TAG_LEN,
    VLAN_TYPE_OFFSET,
    unpack_format,
)
from analyzer.capture.segment import CaptureAnomaly, Segment
from analyzer.capture.stats import CaptureStats

# Link-layer header types, https://www.tcpdump.org/linktypes.html
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_RAW_DLT: Final = (12, 14)
"""DLT_RAW as some systems write it into files (12 most BSDs, 14 OpenBSD); both mean raw IP."""
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276
SUPPORTED_LINK_TYPES: Final = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        *LINKTYPE_RAW_DLT,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

ETHERTYPE_IPV4: Final = 0x0800
"""RFC 894."""
ETHERTYPE_IPV6: Final = 0x86DD
"""RFC 2464 §3."""
VLAN_TPIDS: Final = frozenset({0x8100, 0x88A8, 0x9100})
"""802.1Q C-tag, 802.1ad S-tag, and the pre-standard QinQ TPID."""

# LINKTYPE_NULL (host byte order) and LINKTYPE_LOOP (network byte order): a 4-byte AF_ value.
BSD_AF_INET: Final = 2
BSD_AF_INET6: Final = frozenset({24, 28, 30})
"""AF_INET6 on NetBSD/OpenBSD/BSD/OS (24), FreeBSD/DragonFly (28), macOS (30)."""

# IPv4, RFC 791 §3.1.
IPV4_MORE_FRAGMENTS: Final = 0x2000
IPV4_FRAGMENT_OFFSET_MASK: Final = 0x1FFF
IPV4_FRAGMENT_BITS: Final = IPV4_MORE_FRAGMENTS | IPV4_FRAGMENT_OFFSET_MASK
FRAGMENT_UNIT: Final = 8
"""Fragment offsets count 8-byte units (RFC 791 §3.1, RFC 8200 §4.5)."""

# IPv6, RFC 8200 §3 and §4.
IPPROTO_HOPOPTS: Final = 0
IPPROTO_TCP: Final = 6
IPPROTO_ROUTING: Final = 43
IPPROTO_FRAGMENT: Final = 44
IPPROTO_AH: Final = 51
IPPROTO_DSTOPTS: Final = 60
IPV6_LENGTH_IN_8_OCTETS: Final = frozenset({IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS})
"""Extension headers whose length byte counts 8-octet units beyond the first 8 (§4.3-4.6)."""
IPV6_FRAGMENT_OFFSET_MASK: Final = 0xFFF8
"""Offset in 8-octet units in the upper 13 bits, i.e. already a byte count when masked."""
IPV6_MORE_FRAGMENTS: Final = 0x0001

# TCP, RFC 9293 §3.1; options RFC 9293 §3.2 (MSS) and RFC 7323 §2.2 (WS), §3.2 (TS).
TCPOPT_EOL: Final = 0
TCPOPT_NOP: Final = 1
TCPOPT_MSS: Final = 2
TCPOPT_MSS_LEN: Final = 4
TCPOPT_WSCALE: Final = 3
TCPOPT_WSCALE_LEN: Final = 3
TCPOPT_TIMESTAMP: Final = 8
TS_ONLY_OPTIONS: Final = bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, TCPOPT_TIMESTAMP_LEN))
"""The usual 12 option bytes of a data segment: NOP NOP TS (RFC 7323 Appendix A)."""

ADDRESS_CACHE_SIZE: Final = 4096
"""Address pairs kept as text; the cache is emptied when it grows past this."""

# Each unpacker is declared with the types of what it returns: `struct` itself says only
# "a tuple", and with the types the compiled build does native arithmetic on the fields.
_U16: Final = cast(Callable[[bytes, int], tuple[int]], struct.Struct("!H").unpack_from)
_U32: Final = cast(Callable[[bytes, int], tuple[int]], struct.Struct("!I").unpack_from)
_U32_LE: Final = cast(Callable[[bytes, int], tuple[int]], struct.Struct("<I").unpack_from)
_IPV4: Final = cast(
    Callable[[bytes, int], tuple[int, int, int, int, int, int]],
    struct.Struct("!" + unpack_format(IPV4, IPV4_READ)).unpack_from,
)
"""version/IHL, total length, identification, flags/fragment offset, TTL, protocol."""
_IPV6: Final = cast(
    Callable[[bytes, int], tuple[int, int, int, int]],
    struct.Struct(
        "!"
        + unpack_format(IPV6, ("version_class_flow", "payload_length", "next_header", "hop_limit"))
    ).unpack_from,
)
"""version/class/flow, payload length, next header, hop limit."""
_IPV6_FRAGMENT: Final = cast(
    Callable[[bytes, int], tuple[int, int, int]],
    struct.Struct(
        "!" + unpack_format(IPV6_FRAGMENT, ("next_header", "offset_flags", "identification"))
    ).unpack_from,
)
"""next header, offset/flags, identification."""
_TCP: Final = cast(
    Callable[[bytes, int], tuple[int, int, int, int, int, int, int]],
    struct.Struct(
        "!"
        + unpack_format(
            TCP,
            (
                "source_port",
                "destination_port",
                "sequence",
                "acknowledgment",
                "data_offset",
                "flags",
                "window",
            ),
        )
    ).unpack_from,
)
"""source port, destination port, seq, ack, data offset, flags, window."""
_TS: Final = cast(
    Callable[[bytes, int], tuple[int, int]],
    struct.Struct(
        "!" + unpack_format(TCP_TIMESTAMP_OPTION, ("tsval", "tsecr"), start=TS_VALUE_OFFSET)
    ).unpack_from,
)
"""TSval and TSecr, read at the option's value (after kind and length)."""


class SegmentTaker:
    """The `take` hook: offered the fields of each TCP segment before a `Segment` is built.

    `take` gets the fields a `Segment` would carry (without the TCP options), the segment's raw
    key (`conversation`) and where it was seen, and returns True when it took the segment, so
    that no `Segment` is built; it is called only for complete TCP headers. This one takes
    nothing. A subclass (`FlowTable`) is called directly in the compiled build, without
    boxing a dozen arguments for a Python call, which a plain function hook would need.
    """

    __slots__ = ()

    def take(
        self,
        key: bytes,
        ts: float,
        frame_no: int,
        file_no: int,
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
        payload_len: int,
        ttl: int,
        ip_id: int | None,
        src_mac: bytes | None,
    ) -> bool:
        return False


Take: TypeAlias = Callable[
    [bytes, float, int, int, int, int, int, bytes, int, int, "int | None", "bytes | None"], bool
]
"""A function with the parameters of `SegmentTaker.take`."""


class TakeFunction(SegmentTaker):
    """A `SegmentTaker` that asks a function (tests and benchmarks hand plain functions: in the
    compiled build an interpreted class cannot extend `SegmentTaker`)."""

    __slots__ = ("function",)

    def __init__(self, function: Take) -> None:
        self.function = function

    def take(
        self,
        key: bytes,
        ts: float,
        frame_no: int,
        file_no: int,
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
        payload_len: int,
        ttl: int,
        ip_id: int | None,
        src_mac: bytes | None,
    ) -> bool:
        return self.function(
            key, ts, frame_no, file_no, flags, seq, ack, payload, payload_len, ttl, ip_id, src_mac
        )


Skipped: TypeAlias = Callable[[float, int, int], float]
"""`skipped(ts, file_no, frame_no)`: a TCP segment of another shard went by. Returns the
timestamp before which the callback need not hear of another one (skipped segments with an
earlier timestamp are not reported)."""


def _not_interested(ts: float, file_no: int, frame_no: int) -> float:
    """The `skipped` callback when nobody listens."""
    return float("inf")


class Decoder:
    """Turns frames into Segments for one capture, counting everything else in `stats`.

    `file_no` must be set to the current file's index before its frames are decoded; call
    `finish` once after the last frame. `shard`, `skipped` and `take` are the hooks described
    in the module docstring.
    """

    __slots__ = (
        "_fragments",
        "_pairs",
        "_stats",
        "_unknown",
        "capture_id",
        "file_no",
        "shard",
        "skip_due",
        "skipped",
        "take",
    )

    def __init__(
        self,
        capture_id: str,
        stats: CaptureStats,
        *,
        shard: Shard | None = None,
        skipped: Skipped | None = None,
        take: SegmentTaker | None = None,
    ) -> None:
        self.capture_id = capture_id
        self.file_no = 0
        self._stats = stats
        self._pairs: dict[bytes, tuple[str, str]] = {}
        self._fragments = FragmentReassembler(stats)
        self._unknown: dict[int, tuple[int, FrameRef]] = {}
        self.shard = shard if shard is not None and shard.count > 1 else None
        self.skipped: Skipped = skipped or _not_interested
        self.skip_due = float("-inf")
        """Skipped segments before this timestamp are not reported (what `skipped` asked)."""
        self.take = take

    @property
    def stats(self) -> CaptureStats:
        return self._stats

    def segment(
        self, buf: bytes, off: int, end: int, ts: float, link_type: int, frame_no: int
    ) -> Segment | None:
        """`decode` without the hooks: the frame's Segment even if a shard or consumer would
        have skipped or taken it (for a segment already offered)."""
        shard, take = self.shard, self.take
        self.shard = self.take = None
        try:
            return self.decode(buf, off, end, ts, link_type, frame_no)
        finally:
            self.shard, self.take = shard, take

    def decode(
        self, buf: bytes, off: int, end: int, ts: float, link_type: int, frame_no: int
    ) -> Segment | None:
        """Decode the frame `buf[off:end]`; return its TCP segment or None (counted).

        Each layer hands the next its header's position: the link layer (`_link`) an EtherType,
        the network layer (`_ipv4`, `_ipv6`) the TCP header (`_tcp`)."""
        p, etype, src_mac = self._link(buf, off, end, ts, link_type, frame_no)
        if p < 0:
            return None
        while etype in VLAN_TPIDS:
            if p + VLAN_TAG_LEN > end:
                return self._malformed(frame_no, ts, "frame ends inside a VLAN tag")
            etype = (buf[p + VLAN_TYPE_OFFSET] << 8) | buf[p + (VLAN_TYPE_OFFSET + 1)]
            p += VLAN_TAG_LEN
        if etype == ETHERTYPE_IPV4:
            return self._ipv4(buf, p, end, ts, frame_no, src_mac)
        if etype == ETHERTYPE_IPV6:
            return self._ipv6(buf, p, end, ts, frame_no, src_mac)
        self._stats.non_ip += 1
        return None

    def _link(
        self, buf: bytes, off: int, end: int, ts: float, link_type: int, frame_no: int
    ) -> tuple[int, int, bytes | None]:
        """The link layer: where its payload starts, its EtherType and the source MAC address
        (None when the link layer has none); a start of -1 when the frame was counted instead.
        """
        if link_type == LINKTYPE_ETHERNET:
            p = off + ETH_HEADER_LEN
            if p > end:
                self._malformed(frame_no, ts, "frame shorter than an Ethernet header")
                return -1, 0, None
            etype = (buf[off + ETH_TYPE_OFFSET] << 8) | buf[off + (ETH_TYPE_OFFSET + 1)]
            return p, etype, buf[off + ETH_SRC_OFFSET : off + (ETH_SRC_OFFSET + MAC_LEN)]
        if link_type in (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
            return self._cooked(buf, off, end, ts, link_type, frame_no)
        if link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
            p = off + NULL_HEADER_LEN
            if p > end:
                self._malformed(frame_no, ts, "frame shorter than a loopback header")
                return -1, 0, None
            family = _U32(buf, off + NULL_FAMILY_OFFSET)[0]
            if link_type == LINKTYPE_NULL and family > 0xFFFF:
                family = _U32_LE(buf, off + NULL_FAMILY_OFFSET)[0]  # little-endian host order
            if family == BSD_AF_INET:
                return p, ETHERTYPE_IPV4, None
            if family in BSD_AF_INET6:
                return p, ETHERTYPE_IPV6, None
            self._stats.non_ip += 1
            return -1, 0, None
        if link_type == LINKTYPE_RAW or link_type in LINKTYPE_RAW_DLT:
            if off >= end:
                self._malformed(frame_no, ts, "empty raw IP frame")
                return -1, 0, None
            version = buf[off] >> 4
            if version == 4:
                return off, ETHERTYPE_IPV4, None
            if version == 6:
                return off, ETHERTYPE_IPV6, None
            self._malformed(frame_no, ts, f"raw IP frame with IP version {version}")
            return -1, 0, None
        if link_type == LINKTYPE_IPV4:
            return off, ETHERTYPE_IPV4, None
        if link_type == LINKTYPE_IPV6:
            return off, ETHERTYPE_IPV6, None
        self._unknown_link(link_type, frame_no)
        return -1, 0, None

    def _cooked(
        self, buf: bytes, off: int, end: int, ts: float, link_type: int, frame_no: int
    ) -> tuple[int, int, bytes | None]:
        """`_link` for Linux cooked captures, v1 and v2."""
        if link_type == LINKTYPE_LINUX_SLL:
            hlen, proto_at, alen_at, addr_at = (
                SLL_HEADER_LEN,
                SLL_PROTOCOL_OFFSET,
                SLL_ADDR_LEN_OFFSET + 1,  # low byte of the 16-bit length
                SLL_ADDR_OFFSET,
            )
        else:
            hlen, proto_at, alen_at, addr_at = (
                SLL2_HEADER_LEN,
                SLL2_PROTOCOL_OFFSET,
                SLL2_ADDR_LEN_OFFSET,
                SLL2_ADDR_OFFSET,
            )
        p = off + hlen
        if p > end:
            self._malformed(frame_no, ts, "frame shorter than a Linux cooked header")
            return -1, 0, None
        etype = _U16(buf, off + proto_at)[0]
        if buf[off + alen_at] == MAC_LEN:
            return p, etype, buf[off + addr_at : off + addr_at + MAC_LEN]
        return p, etype, None

    def _ipv4(
        self, buf: bytes, p: int, end: int, ts: float, frame_no: int, src_mac: bytes | None
    ) -> Segment | None:
        """The IPv4 header at `buf[p:]` (options, padding, fragments, AH), then its TCP."""
        if end - p < IPV4_MIN_HEADER_LEN:
            return self._malformed(frame_no, ts, "frame ends inside the IPv4 header")
        vihl, total, ip_id, frag, ttl, proto = _IPV4(buf, p)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < IPV4_MIN_HEADER_LEN:
            return self._malformed(
                frame_no, ts, f"bad IPv4 version/header length byte 0x{vihl:02x}"
            )
        if total == 0:
            total = end - p  # TCP segmentation offload: length left for the NIC to fill
        elif total < ihl:
            return self._malformed(
                frame_no, ts, f"IPv4 total length {total} below header length {ihl}"
            )
        ip_end = p + total
        if end > ip_end:
            end = ip_end  # Ethernet padding or trailer
        t = p + ihl
        if t > end:
            return self._malformed(frame_no, ts, "frame ends inside the IPv4 options")
        pair = buf[p + IPV4_ADDRS_OFFSET : p + (IPV4_ADDRS_OFFSET + 2 * IPV4_ADDR_LEN)]
        texts = self._pairs.get(pair)
        if texts is None:
            texts = self._name_pair(pair, socket.AF_INET)
        if frag & IPV4_FRAGMENT_BITS:
            offset = (frag & IPV4_FRAGMENT_OFFSET_MASK) * FRAGMENT_UNIT
            if offset + total - ihl > MAX_DATAGRAM_LEN:
                return self._malformed(frame_no, ts, "IPv4 fragment reaches past 65535 bytes")
            whole = self._join(
                (4, pair[:IPV4_ADDR_LEN], pair[IPV4_ADDR_LEN:], ip_id),
                offset,
                more=bool(frag & IPV4_MORE_FRAGMENTS),
                data=buf[t:end],
                protocol=proto,
                ts=ts,
                frame_no=frame_no,
            )
            if whole is None:
                return None
            self._reassembled(whole.frames, ts, proto)
            buf = whole.payload
            t = 0
            end = ip_end = len(buf)
        while proto == IPPROTO_AH:  # RFC 4302 §2.2: length in 32-bit words minus 2
            if t + EXT_MIN_LEN > end:
                return self._malformed(frame_no, ts, "frame ends inside an AH header")
            proto = buf[t + EXT_NEXT_HEADER]
            t += (buf[t + EXT_LENGTH] + 2) << 2
            if t > ip_end:
                return self._malformed(frame_no, ts, "AH header longer than the IPv4 payload")
        if proto != IPPROTO_TCP:
            self._stats.non_tcp += 1
            return None
        return self._tcp(buf, t, end, ip_end, pair, texts, ts, frame_no, ttl, ip_id, src_mac)

    def _ipv6(
        self, buf: bytes, p: int, end: int, ts: float, frame_no: int, src_mac: bytes | None
    ) -> Segment | None:
        """The IPv6 header at `buf[p:]` and its extension headers (fragments joined), then its
        TCP."""
        if end - p < IPV6_HEADER_LEN:
            return self._malformed(frame_no, ts, "frame ends inside the IPv6 header")
        vtf, plen, nh, ttl = _IPV6(buf, p)
        if vtf >> 28 != 6:
            return self._malformed(frame_no, ts, f"IPv6 header with version {vtf >> 28}")
        t = p + IPV6_HEADER_LEN
        ip_end = t + plen if plen else end  # 0: jumbogram or segmentation offload
        if end > ip_end:
            end = ip_end
        pair = buf[p + IPV6_ADDRS_OFFSET : p + (IPV6_ADDRS_OFFSET + 2 * IPV6_ADDR_LEN)]
        texts = self._pairs.get(pair)
        if texts is None:
            texts = self._name_pair(pair, socket.AF_INET6)
        ip_id: int | None = None
        while nh != IPPROTO_TCP:
            if nh in IPV6_LENGTH_IN_8_OCTETS or nh == IPPROTO_AH:
                if t + EXT_MIN_LEN > end:
                    return self._malformed(frame_no, ts, "frame ends inside an IPv6 option")
                # AH (RFC 4302 §2.2) counts 32-bit words minus 2, the others 8 octets minus 1.
                n = buf[t + EXT_LENGTH]
                size = (n + 2) << 2 if nh == IPPROTO_AH else (n + 1) << 3
                nh = buf[t + EXT_NEXT_HEADER]
                t += size
            elif nh == IPPROTO_FRAGMENT:
                if t + IPV6_FRAGMENT_HEADER_LEN > end:
                    return self._malformed(
                        frame_no, ts, "frame ends inside an IPv6 fragment header"
                    )
                nh, offflags, ident = _IPV6_FRAGMENT(buf, t)
                t += IPV6_FRAGMENT_HEADER_LEN
                ip_id = ident
                offset = offflags & IPV6_FRAGMENT_OFFSET_MASK
                more = offflags & IPV6_MORE_FRAGMENTS
                if offset or more:  # else an atomic fragment (RFC 6946): nothing to join
                    if offset + ip_end - t > MAX_DATAGRAM_LEN:
                        return self._malformed(
                            frame_no, ts, "IPv6 fragment reaches past 65535 bytes"
                        )
                    whole = self._join(
                        (6, pair[:IPV6_ADDR_LEN], pair[IPV6_ADDR_LEN:], ident),
                        offset,
                        more=bool(more),
                        data=buf[t:end],
                        protocol=nh,
                        ts=ts,
                        frame_no=frame_no,
                    )
                    if whole is None:
                        return None
                    nh = whole.protocol
                    self._reassembled(whole.frames, ts, nh)
                    buf = whole.payload
                    t = 0
                    end = ip_end = len(buf)
            else:
                self._stats.non_tcp += 1
                return None
            if t > ip_end:
                return self._malformed(
                    frame_no, ts, "IPv6 extension headers longer than the payload"
                )
        return self._tcp(buf, t, end, ip_end, pair, texts, ts, frame_no, ttl, ip_id, src_mac)

    def _join(
        self,
        key: FragmentKey,
        offset: int,
        *,
        more: bool,
        data: bytes,
        protocol: int,
        ts: float,
        frame_no: int,
    ) -> Reassembled | None:
        """Count an IP fragment and add it to its datagram; the datagram if it is complete."""
        self._stats.ip_fragments += 1
        return self._fragments.add(
            key=key,
            offset=offset,
            more=more,
            data=data,
            protocol=protocol,
            ts=ts,
            frame=FrameRef(self.capture_id, frame_no, self.file_no),
        )

    def _tcp(
        self,
        buf: bytes,
        t: int,
        end: int,
        ip_end: int,
        pair: bytes,
        texts: tuple[str, str],
        ts: float,
        frame_no: int,
        ttl: int,
        ip_id: int | None,
        src_mac: bytes | None,
    ) -> Segment | None:
        """The TCP header at `buf[t:]` (the IP payload ends at `ip_end`, the frame at `end`):
        offered to the shard and `take` hooks, else made a `Segment`."""
        if end - t < TCP_MIN_HEADER_LEN:
            if ip_end - t < TCP_MIN_HEADER_LEN:
                return self._malformed(frame_no, ts, "IP payload shorter than a TCP header")
            return self._malformed(frame_no, ts, "frame ends inside the TCP header (snaplen)")
        sport, dport, seq, ack, doff_byte, flags, window = _TCP(buf, t)
        doff = (doff_byte >> 4) << 2
        pstart = t + doff
        if doff < TCP_MIN_HEADER_LEN or pstart > ip_end:
            return self._malformed(
                frame_no, ts, f"TCP data offset {doff} outside the IP payload of {ip_end - t}"
            )
        if self.shard is not None and self._other_shard(pair, sport, dport, ts, frame_no):
            return None
        # The options can run past a snaplen cut: then no payload was captured. (Never slice
        # bytes past their end in the compiled build: see docs/DESIGN.md.)
        payload = buf[pstart:end] if pstart < end else b""
        take = self.take
        # Positional, as `SegmentTaker.take`'s parameters: a call per packet, where keyword
        # arguments cost the interpreted build 5%.
        if take is not None and take.take(
            pair + buf[t + TCP_SPORT : t + (TCP_SPORT + TCP_PORTS_LEN)],
            ts,
            frame_no,
            self.file_no,
            flags,
            seq,
            ack,
            payload,
            ip_end - pstart,
            ttl,
            ip_id,
            src_mac,
        ):
            self._stats.tcp_segments += 1
            return None
        return self._segment(
            buf,
            options=t + TCP_MIN_HEADER_LEN,
            payload_at=pstart,
            end=end,
            texts=texts,
            ts=ts,
            frame_no=frame_no,
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            payload=payload,
            ttl=ttl,
            ip_id=ip_id,
            src_mac=src_mac,
            payload_len=ip_end - pstart,
        )

    def _other_shard(self, pair: bytes, sport: int, dport: int, ts: float, frame_no: int) -> bool:
        """Whether the segment belongs to another shard's conversation: then it is counted and
        reported to `skipped`."""
        shard = self.shard
        if shard is None or (
            shard_index(fold_addresses(pair), sport, dport, shard.count) == shard.index
        ):
            return False
        self._stats.tcp_segments += 1
        if ts >= self.skip_due:
            self.skip_due = self.skipped(ts, self.file_no, frame_no)
        return True

    def _segment(
        self,
        buf: bytes,
        *,
        options: int,
        payload_at: int,
        end: int,
        texts: tuple[str, str],
        ts: float,
        frame_no: int,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        payload: bytes,
        payload_len: int,
        ttl: int,
        ip_id: int | None,
        src_mac: bytes | None,
    ) -> Segment:
        """The `Segment` of a TCP segment no hook took, with its options (`buf[options:]` up to
        the payload at `payload_at`, or the frame's `end` if that comes first)."""
        if payload_at > options:
            tsval, tsecr, mss, wscale = _tcp_options(
                buf, options, payload_at if payload_at < end else end
            )
        else:
            tsval = tsecr = mss = wscale = None
        self._stats.tcp_segments += 1
        return new_segment(
            frame=new_frame_ref(self.capture_id, frame_no, self.file_no),
            ts=ts,
            src=texts[0],
            dst=texts[1],
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            payload=payload,
            payload_len=payload_len,
            ttl=ttl,
            ip_id=ip_id,
            src_mac=src_mac,
            tsval=tsval,
            tsecr=tsecr,
            mss=mss,
            wscale=wscale,
        )

    def finish(self) -> None:
        """Give up unfinished fragment sets and report undecoded link types (end of capture)."""
        self._fragments.flush()
        for link_type, (count, first) in self._unknown.items():
            self._stats.add_anomaly(
                CaptureAnomaly.UNKNOWN_LINK_TYPE,
                f"link type {link_type} is not decoded: {count} frame(s) skipped",
                (first,),
            )
        self._unknown.clear()

    def _name_pair(self, pair: bytes, family: int) -> tuple[str, str]:
        half = len(pair) // 2
        texts = (socket.inet_ntop(family, pair[:half]), socket.inet_ntop(family, pair[half:]))
        if len(self._pairs) >= ADDRESS_CACHE_SIZE:
            self._pairs.clear()
        self._pairs[pair] = texts
        return texts

    def _malformed(self, frame_no: int, ts: float, detail: str) -> Segment | None:
        """Count a frame whose headers do not add up; always None (no segment)."""
        self._stats.malformed += 1
        self._stats.add_anomaly(
            CaptureAnomaly.MALFORMED_PACKET,
            detail,
            (FrameRef(self.capture_id, frame_no, self.file_no),),
            ts,
        )
        return None

    def _reassembled(self, frames: tuple[FrameRef, ...], ts: float, protocol: int) -> None:
        self._stats.fragments_reassembled += 1
        if protocol == IPPROTO_TCP:
            self._stats.add_anomaly(
                CaptureAnomaly.IP_FRAGMENT,
                f"TCP segment rebuilt from {len(frames)} IP fragments",
                _cite(frames),
                ts,
            )

    def _unknown_link(self, link_type: int, frame_no: int) -> Segment | None:
        """Count a frame of a link type not decoded; always None (no segment)."""
        self._stats.unknown_link_packets += 1
        seen = self._unknown.get(link_type)
        if seen is None:
            self._unknown[link_type] = (1, FrameRef(self.capture_id, frame_no, self.file_no))
        else:
            self._unknown[link_type] = (seen[0] + 1, seen[1])
        return None


def _tcp_options(
    buf: bytes, o: int, oend: int
) -> tuple[int | None, int | None, int | None, int | None]:
    """TSval, TSecr, MSS and window scale from the TCP options in `buf[o:oend]` (None for each
    one absent); a malformed option ends the walk."""
    tsval: int | None = None
    tsecr: int | None = None
    mss: int | None = None
    wscale: int | None = None
    if oend - o == 12 and buf[o : o + 4] == TS_ONLY_OPTIONS:
        tsval, tsecr = _TS(buf, o + 4)
        return tsval, tsecr, None, None
    while o < oend:
        kind = buf[o]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            o += 1
            continue
        if o + 1 >= oend:
            break
        olen = buf[o + TCPOPT_LENGTH_OFFSET]
        if olen < 2 or o + olen > oend:
            break
        if kind == TCPOPT_TIMESTAMP and olen == TCPOPT_TIMESTAMP_LEN:
            tsval, tsecr = _TS(buf, o + TS_VALUE_OFFSET)
        elif kind == TCPOPT_MSS and olen == TCPOPT_MSS_LEN:
            mss = _U16(buf, o + 2)[0]
        elif kind == TCPOPT_WSCALE and olen == TCPOPT_WSCALE_LEN:
            wscale = buf[o + 2]
        o += olen
    return tsval, tsecr, mss, wscale


def _cite(frames: tuple[FrameRef, ...]) -> tuple[FrameRef, ...]:
    """At most MAX_FRAMES_CITED frames, always keeping the last (the one that completed)."""
    if len(frames) <= MAX_FRAMES_CITED:
        return frames
    return frames[: MAX_FRAMES_CITED - 1] + frames[-1:]


new_segment: Final = quick_constructor(Segment)
"""`Segment(...)`, made faster: one is made per segment the consumer does not take."""

new_frame_ref: Final = quick_constructor(FrameRef)
"""`FrameRef(capture_id, frame_no, file_no)`, made faster (one per packet with payload)."""
