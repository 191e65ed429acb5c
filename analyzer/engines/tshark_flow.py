"""One TCP connection as tshark describes it, folded into an `SmtpSession`.

Takes the connection's `TcpRow`s (every segment) and `SmtpFrame`s (what the SMTP dissector
showed) in frame order and produces what the native flow table would have handed on: the roles
(the SYN's sender is the client, or the SYN-ACK's receiver; without a handshake, the side the
dissector calls the requester, else the port rule of `flows.key`), `FlowInfo`, per-direction
`DirectionStats` from Wireshark's sequence analysis, and a `StreamEnd` for each direction's
first FIN and for the first RST, with the sender's TTL/IP-ID/MAC next to what that endpoint's
earlier packets looked like. The SMTP events come from `tshark_smtp`; the session is built by
the native `SessionBuilder`, so the model logic exists once.

A connection is finished at its first RST or once both sides sent FIN (like the native table);
later segments of it are not counted.
"""

from __future__ import annotations

from typing import Final

from analyzer._common import Anomaly, Direction, FrameRef
from analyzer.capture.segment import ACK, FIN, RST, SYN
from analyzer.flows.events import (
    DirectionStats,
    EndKind,
    Endpoint,
    FlowAnomaly,
    FlowInfo,
    FlowStats,
    PacketOrigin,
    StreamEnd,
)
from analyzer.flows.key import port_says_source_is_server
from analyzer.session.builder import SessionBuilder
from analyzer.session.model import SmtpSession
from analyzer.smtp.events import Event

from .tshark_fields import TcpRow
from .tshark_pdml import SmtpFrame
from .tshark_smtp import SmtpSynth

C2S: Final = Direction.CLIENT_TO_SERVER
S2C: Final = Direction.SERVER_TO_CLIENT

EndpointKey = tuple[str, int]


class _Side:
    """What one endpoint sent."""

    __slots__ = (
        "end",
        "fin",
        "first_tsval",
        "ip_id",
        "isn",
        "mac",
        "max_end",
        "mss",
        "stats",
        "syn_frame",
        "ttl_counts",
        "ttl_last",
    )

    def __init__(self) -> None:
        self.stats = DirectionStats()
        self.first_tsval: int | None = None
        self.isn: int | None = None
        self.mss: int | None = None
        self.syn_frame: FrameRef | None = None
        self.ttl_counts: dict[int, int] = {}
        self.ttl_last = -1
        self.ip_id: int | None = None
        self.mac: bytes | None = None
        self.max_end: int | None = None
        """Relative sequence number after the highest byte seen."""
        self.fin = False
        self.end: StreamEnd | None = None

    def usual_origin(self) -> PacketOrigin | None:
        """Most common TTL (the latest on a tie), latest IP-ID and MAC of the packets so far."""
        if not self.ttl_counts:
            return None
        ttl = self.ttl_last
        best = self.ttl_counts[ttl]
        for other, count in self.ttl_counts.items():
            if count > best:
                ttl, best = other, count
        return PacketOrigin(ttl, self.ip_id, self.mac)


class TsharkFlow:
    """One `tcp.stream` carrying SMTP, from its first segment to its session."""

    def __init__(self, capture_id: str, row: TcpRow, ref: FrameRef) -> None:
        self.capture_id = capture_id
        self.index = row.stream
        self.start_ts = row.ts
        self.first = (row.src, row.sport)
        self.other = (row.dst, row.dport)
        self.sides: dict[EndpointKey, _Side] = {self.first: _Side(), self.other: _Side()}
        self.client: EndpointKey | None = None
        self.handshake = False
        self.guess: str | None = None
        self.first_frame = ref
        self.last_ts = row.ts
        self.closed = False
        self.smtp = SmtpSynth()
        self.builder: SessionBuilder | None = None
        self._end_frame: FrameRef | None = None

    # -- roles ----------------------------------------------------------------------------

    def _set_client(self, client: EndpointKey, *, handshake: bool, guess: str | None) -> None:
        if self.client is None:
            self.client = client
            self.handshake = handshake
            self.guess = guess

    def _peer(self, key: EndpointKey) -> EndpointKey:
        return self.other if key == self.first else self.first

    def _guess_from_ports(self) -> None:
        if self.client is not None:
            return
        (_, first_port), (_, other_port) = self.first, self.other
        sender_is_server = port_says_source_is_server(first_port, other_port)
        client = self.other if sender_is_server else self.first
        server = self._peer(client)
        self._set_client(
            client,
            handshake=False,
            guess=f"no handshake captured: {Endpoint(*server)} is taken as the server from "
            "its port",
        )

    def direction(self, src: EndpointKey) -> Direction:
        return C2S if src == self.client else S2C

    def _info(self) -> FlowInfo:
        assert self.client is not None
        client, server = self.client, self._peer(self.client)
        cside, sside = self.sides[client], self.sides[server]
        return FlowInfo(
            capture_id=self.capture_id,
            index=self.index,
            client=Endpoint(*client),
            server=Endpoint(*server),
            start_ts=self.start_ts,
            handshake_seen=self.handshake,
            syn_frame=cside.syn_frame,
            client_isn=cside.isn,
            server_isn=sside.isn,
            client_tsval=cside.first_tsval,
            server_tsval=sside.first_tsval,
            mss=(cside.mss, sside.mss),
        )

    def _sync_extent(self) -> None:
        """Tell the SMTP side how far the client's stream reached (every segment counted)."""
        if self.client is not None:
            reach = self.sides[self.client].max_end
            if reach is not None:
                self.smtp.client_extent = reach - 1

    def _feed(self, events: list[Event]) -> None:
        if not events:
            return
        if self.builder is None:
            self._guess_from_ports()
            self.builder = SessionBuilder(self._info())
        self.builder.add(events)

    # -- input ----------------------------------------------------------------------------

    def add_row(self, row: TcpRow, ref: FrameRef) -> None:
        """Count one segment of this connection (every segment, SMTP or not)."""
        if self.closed:
            return
        key = (row.src, row.sport)
        side = self.sides.get(key)
        if side is None:
            return
        flags = row.flags
        if flags & SYN:
            if side.isn is None:
                side.isn = row.seq_raw
                side.mss = row.mss
            if flags & ACK:
                peer = self.sides[self._peer(key)]
                if peer.isn is None:
                    peer.isn = (row.ack_raw - 1) & 0xFFFFFFFF
                self._set_client(self._peer(key), handshake=False, guess=None)
            else:
                if side.syn_frame is None:
                    side.syn_frame = ref
                self._set_client(key, handshake=True, guess=None)
        st = side.stats
        if st.packets == 0:
            st.first_frame = ref
            side.first_tsval = row.tsval
        st.packets += 1
        st.last_frame = ref
        st.last_ts = row.ts
        self.last_ts = row.ts
        usual = side.usual_origin() if flags & (FIN | RST) else None
        if not flags & RST:
            side.ttl_counts[row.ttl] = side.ttl_counts.get(row.ttl, 0) + 1
            side.ttl_last = row.ttl
            side.ip_id = row.ip_id
            side.mac = row.mac
        if row.length:
            st.payload_packets += 1
            self._count_payload(side, row, ref)
        if flags & RST:
            self._end(key, EndKind.RST, max(row.seq - 1, 0), row, ref, usual)
            self.closed = True
        elif flags & FIN and not side.fin:
            side.fin = True
            offset = max(row.seq + row.length - 1, 0) if not flags & SYN else 0
            self._end(key, EndKind.FIN, offset, row, ref, usual)
            if all(s.fin for s in self.sides.values()):
                self.closed = True

    def _count_payload(self, side: _Side, row: TcpRow, ref: FrameRef) -> None:
        st = side.stats
        end = row.seq + row.length
        if row.retransmission:
            st.retransmissions += 1
            st.retransmitted_bytes += row.length
        elif row.out_of_order:
            st.out_of_order += 1
            st.bytes += row.length
        else:
            st.bytes += row.length
        if row.lost_segment and side.max_end is not None and row.seq > side.max_end:
            missing = row.seq - side.max_end
            st.gaps += 1
            st.gap_bytes += missing
            if self.client is not None:
                direction = self.direction((row.src, row.sport))
                self._feed(self.smtp.gap(direction, side.max_end - 1, missing, ref, row.ts))
        if side.max_end is None or end > side.max_end:
            side.max_end = end

    def _end(
        self,
        key: EndpointKey,
        kind: EndKind,
        offset: int,
        row: TcpRow,
        ref: FrameRef,
        usual: PacketOrigin | None,
    ) -> None:
        if self.client is None:
            self._guess_from_ports()
        direction = self.direction(key)
        end = StreamEnd(
            direction, kind, offset, ref, row.ts, PacketOrigin(row.ttl, row.ip_id, row.mac), usual
        )
        self.sides[key].end = end
        self.sides[key].stats.end = end
        self._end_frame = ref
        self._sync_extent()
        self._feed(self.smtp.close(direction, kind is EndKind.RST, offset, ref, row.ts))
        assert self.builder is not None  # the close event created it
        self.builder.add_end(end)

    def add_smtp(self, frame: SmtpFrame, row: TcpRow, ref: FrameRef) -> None:
        """What the dissectors showed in a segment already counted with `add_row`."""
        if self.closed and not (row.flags & (FIN | RST)):
            return
        key = (row.src, row.sport)
        if key not in self.sides:
            return
        if self.client is None and frame.request is not None:
            client = key if frame.request else self._peer(key)
            server = self._peer(client)
            self._set_client(
                client,
                handshake=False,
                guess=f"no handshake captured: {Endpoint(*server)} is taken as the server "
                "from the SMTP dissector's view of the first payload",
            )
        if self.client is None:
            self._guess_from_ports()
        self._sync_extent()
        self._feed(self.smtp.frame(frame, self.direction(key), ref, row.ts))

    # -- result ---------------------------------------------------------------------------

    def finish(self, evicted: str | None = None) -> SmtpSession:
        """The session, once the connection closed or the capture ended (or, with the reason
        in `evicted`, when it had to be given up early)."""
        self._guess_from_ports()
        info = self._info()
        builder = self.builder
        if builder is None:
            builder = self.builder = SessionBuilder(info)
        else:
            builder.flow = info
        if self.guess is not None:
            builder.add_anomaly(
                Anomaly(FlowAnomaly.MIDSTREAM_START, self.guess, (self.first_frame,), self.start_ts)
            )
        self._sync_extent()
        if evicted is not None:
            builder.add_anomaly(
                Anomaly(FlowAnomaly.FLOW_EVICTED, evicted, (self.first_frame,), self.last_ts)
            )
        builder.add(self.smtp.eof(self._end_frame, self.last_ts))
        assert self.client is not None
        client, server = self.sides[self.client], self.sides[self._peer(self.client)]
        stats = FlowStats(
            client_to_server=client.stats,
            server_to_client=server.stats,
            end_ts=self.last_ts,
            evicted=evicted is not None,
        )
        tls = self.smtp.tls_offsets
        tls_bytes = (0, 0)
        if tls is not None:
            tls_bytes = (
                max(0, (client.max_end or 1) - 1 - tls[0]),
                max(0, (server.max_end or 1) - 1 - tls[1]),
            )
        return builder.build(f"{self.capture_id}#{self.index}", stats, tls_bytes=tls_bytes)
