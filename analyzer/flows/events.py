"""What the flow table hands to its sink: one-direction byte streams with their gaps and ends.

Values only; the table that produces them is in `table` and `reassembly`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from analyzer._common import Direction, FrameMarks, FrameRef


class EndKind(enum.StrEnum):
    FIN = "fin"
    RST = "rst"


class FlowAnomaly(enum.StrEnum):
    """Odd things seen at the TCP layer; the `detail` of the `Anomaly` says where."""

    RETRANSMISSION_MISMATCH = "retransmission_mismatch"
    """A segment overlaps bytes seen before and the bytes differ: evidence of in-path rewriting.
    `frames` holds the earlier frame first, then the later one."""
    MIDSTREAM_START = "midstream_start"
    """No handshake seen: roles were guessed from ports or content."""
    OUT_OF_ORDER_LIMIT = "out_of_order_limit"
    """Too much out-of-order data buffered: the hole was declared a gap."""
    DATA_AFTER_FIN = "data_after_fin"
    DATA_AFTER_RST = "data_after_rst"
    FLOW_EVICTED = "flow_evicted"
    """The flow table was full or the flow idle too long: it was closed early."""
    SNAPLEN_CUT = "snaplen_cut"
    """A segment's payload was cut by the capture's snaplen: the missing bytes are a gap."""
    PORT_REUSE = "port_reuse"
    """A new SYN on a 4-tuple whose previous connection was still open."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int

    def __str__(self) -> str:
        if ":" in self.ip:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """Identity of one TCP connection in one capture."""

    capture_id: str
    index: int
    """0-based order of first appearance among the capture's TCP conversations, as Wireshark's
    `tcp.stream` numbers them."""
    client: Endpoint
    server: Endpoint
    start_ts: float
    handshake_seen: bool
    """True when the SYN was captured, so roles are certain."""
    syn_frame: FrameRef | None = None
    client_isn: int | None = None
    server_isn: int | None = None
    client_tsval: int | None = None
    """TSval of the client's first segment (SYN when captured)."""
    server_tsval: int | None = None
    mss: tuple[int | None, int | None] = (None, None)
    """MSS option (client SYN, server SYN-ACK)."""
    syn_window: tuple[int | None, int | None] = (None, None)
    """TCP window field of the client's SYN and the server's SYN-ACK (never scaled)."""
    wscale: tuple[int | None, int | None] = (None, None)
    """Window scale option (RFC 7323 §2) of the client's SYN and the server's SYN-ACK."""


@dataclass(frozen=True, slots=True)
class StreamData:
    """In-order bytes of one direction: the new bytes of one segment, or of a run of
    consecutive segments (then `marks` says where each begins)."""

    direction: Direction
    offset: int
    """Stream offset of data[0]: 0 is the first byte after the SYN."""
    data: bytes
    frame: FrameRef
    """Frame of the first segment."""
    ts: float
    """Capture time of the first segment."""
    marks: FrameMarks | None = None
    """Where each segment of a run begins; None when the bytes are one segment's."""

    def locate(self, offset: int) -> tuple[FrameRef, float]:
        """Frame and capture time of the segment that carried the byte at stream `offset`."""
        if self.marks is None:
            return self.frame, self.ts
        return self.marks.locate(offset)

    def pieces(self, start: int = 0, end: int | None = None) -> Iterator[StreamData]:
        """The bytes segment by segment, each with its own frame and time (no marks); only
        the segments holding bytes of stream offsets [start, end) when those are given."""
        marks = self.marks
        if marks is None:
            yield self
            return
        data = self.data
        base = self.offset
        offsets = marks.offsets
        last = len(offsets) - 1
        stop_at = base + len(data) if end is None else end
        for i in range(marks.index(start), last + 1):
            first = offsets[i]
            if first >= stop_at:
                break
            stop = offsets[i + 1] if i < last else base + len(data)
            yield StreamData(
                self.direction,
                first,
                data[first - base : stop - base],
                marks.frames[i],
                marks.times[i],
            )


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Bytes of one direction that were never captured; the stream continues after them."""

    direction: Direction
    offset: int
    length: int
    ts: float
    frame: FrameRef | None
    """The first frame after the gap."""


@dataclass(frozen=True, slots=True)
class PacketOrigin:
    """What tells which box sent a packet: compare with the endpoint's other packets."""

    ttl: int
    ip_id: int | None
    src_mac: bytes | None


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """A FIN or RST, with what its sender looked like and what that endpoint usually looks like."""

    direction: Direction
    """Direction of the FIN/RST segment (CLIENT_TO_SERVER: the client side sent it)."""
    kind: EndKind
    offset: int
    """Stream offset the FIN/RST sequence number points at."""
    frame: FrameRef
    ts: float
    origin: PacketOrigin
    usual_origin: PacketOrigin | None
    """The same endpoint's earlier packets (most common TTL, last IP-ID, MAC); None if none seen."""


@dataclass(slots=True)
class DirectionStats:
    """Per-direction counters of one flow (mutable while the flow lives)."""

    packets: int = 0
    payload_packets: int = 0
    bytes: int = 0
    """Stream bytes delivered (gaps excluded)."""
    retransmitted_bytes: int = 0
    retransmissions: int = 0
    out_of_order: int = 0
    gap_bytes: int = 0
    gaps: int = 0
    conflicts: int = 0
    first_frame: FrameRef | None = None
    last_frame: FrameRef | None = None
    last_ts: float | None = None
    end: StreamEnd | None = None
    ip_ids: tuple[int, ...] = ()
    """IPv4 IP-IDs of this direction's first packets, in capture order (RSTs aside; at most
    `table.IP_ID_SAMPLES`): NAT and sequence randomisation leave them, so the same sequence in
    both captures marks the same connection."""


@dataclass(slots=True)
class FlowStats:
    """Counters of one finished flow, handed on at close."""

    client_to_server: DirectionStats = field(default_factory=DirectionStats)
    server_to_client: DirectionStats = field(default_factory=DirectionStats)
    end_ts: float | None = None
    evicted: bool = False

    def of(self, direction: Direction) -> DirectionStats:
        if direction is Direction.CLIENT_TO_SERVER:
            return self.client_to_server
        return self.server_to_client
