"""Build TCP segments as a capture would show them, and record what a flow table reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer._common import Anomaly, Direction, FrameRef
from analyzer.capture.segment import ACK, FIN, PSH, RST, SYN, Segment
from analyzer.flows.events import (
    FlowAnomaly,
    FlowInfo,
    FlowStats,
    StreamData,
    StreamEnd,
    StreamGap,
)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT
MASK = 0xFFFFFFFF


class Frames:
    """Frame numbers and timestamps shared by every conversation of one capture."""

    def __init__(self, capture_id: str = "cap", ts: float = 1_000.0, step: float = 0.001) -> None:
        self.capture_id = capture_id
        self.no = 0
        self.ts = ts
        self.step = step

    def next(self, ts: float | None) -> tuple[FrameRef, float]:
        self.no += 1
        if ts is None:
            self.ts += self.step
        else:
            self.ts = ts
        return FrameRef(self.capture_id, self.no), self.ts


@dataclass
class Side:
    ip: str
    port: int
    isn: int
    ttl: int = 64
    mac: bytes = b"\x02\x00\x00\x00\x00\x01"
    ip_id: int = 100
    nxt: int = field(init=False)

    def __post_init__(self) -> None:
        self.nxt = (self.isn + 1) & MASK


class Conversation:
    """One TCP connection between a client and a server, segment by segment."""

    def __init__(
        self,
        frames: Frames | None = None,
        *,
        client: tuple[str, int] = ("192.0.2.10", 40000),
        server: tuple[str, int] = ("198.51.100.25", 25),
        client_isn: int = 1_000,
        server_isn: int = 900_000,
    ) -> None:
        self.frames = frames or Frames()
        self.client = Side(*client, client_isn, ttl=64, mac=b"\x02\x00\x00\x00\x00\x0c")
        self.server = Side(*server, server_isn, ttl=57, mac=b"\x02\x00\x00\x00\x00\x5e")

    def side(self, from_client: bool) -> tuple[Side, Side]:
        return (self.client, self.server) if from_client else (self.server, self.client)

    def segment(
        self,
        from_client: bool,
        *,
        seq: int | None = None,
        ack: int | None = None,
        flags: int = ACK,
        payload: bytes = b"",
        payload_len: int | None = None,
        ttl: int | None = None,
        ip_id: int | None = None,
        mac: bytes | None = None,
        ts: float | None = None,
        tsval: int | None = None,
        mss: int | None = None,
    ) -> Segment:
        """A segment from one side; seq/ack default to that side's next byte and the peer's."""
        me, peer = self.side(from_client)
        frame, when = self.frames.next(ts)
        if ip_id is None:
            me.ip_id += 1
            ip_id = me.ip_id
        return Segment(
            frame=frame,
            ts=when,
            src=me.ip,
            dst=peer.ip,
            sport=me.port,
            dport=peer.port,
            seq=(me.nxt if seq is None else seq) & MASK,
            ack=(peer.nxt if ack is None else ack) & MASK,
            flags=flags,
            window=65535,
            payload=payload,
            payload_len=len(payload) if payload_len is None else payload_len,
            ttl=me.ttl if ttl is None else ttl,
            ip_id=ip_id,
            src_mac=me.mac if mac is None else mac,
            tsval=tsval,
            mss=mss,
        )

    def handshake(self) -> list[Segment]:
        c, s = self.client, self.server
        return [
            self.segment(True, seq=c.isn, ack=0, flags=SYN, mss=1460, tsval=111),
            self.segment(False, seq=s.isn, ack=c.isn + 1, flags=SYN | ACK, mss=1380, tsval=222),
            self.segment(True),
        ]

    def send(self, from_client: bool, data: bytes, **kw: object) -> Segment:
        """Data at the side's next sequence number; advances it."""
        me, _ = self.side(from_client)
        seg = self.segment(from_client, payload=data, flags=ACK | PSH, **kw)  # type: ignore[arg-type]
        me.nxt = (me.nxt + len(data)) & MASK
        return seg

    def ack(self, from_client: bool, **kw: object) -> Segment:
        return self.segment(from_client, **kw)  # type: ignore[arg-type]

    def fin(self, from_client: bool, **kw: object) -> Segment:
        me, _ = self.side(from_client)
        seg = self.segment(from_client, flags=FIN | ACK, **kw)  # type: ignore[arg-type]
        me.nxt = (me.nxt + 1) & MASK
        return seg

    def rst(self, from_client: bool, **kw: object) -> Segment:
        return self.segment(from_client, flags=RST | ACK, **kw)  # type: ignore[arg-type]

    def close(self) -> list[Segment]:
        """Client FIN, server FIN, client's last ACK."""
        return [self.fin(True), self.fin(False), self.ack(True)]


class Recorder:
    """A FlowSink that keeps everything it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, object]] = []
        self.infos: dict[int, FlowInfo] = {}
        self.closed: dict[int, FlowStats] = {}

    def on_flow_start(self, flow: FlowInfo) -> None:
        assert flow.index not in self.infos, "started twice"
        self.infos[flow.index] = flow
        self.events.append(("start", flow.index, flow))

    def on_data(self, flow: FlowInfo, data: StreamData) -> None:
        assert self.infos[flow.index] is flow
        assert flow.index not in self.closed
        self.events.append(("data", flow.index, data))

    def on_gap(self, flow: FlowInfo, gap: StreamGap) -> None:
        assert self.infos[flow.index] is flow
        assert flow.index not in self.closed
        self.events.append(("gap", flow.index, gap))

    def on_end(self, flow: FlowInfo, end: StreamEnd) -> None:
        assert self.infos[flow.index] is flow
        assert flow.index not in self.closed
        self.events.append(("end", flow.index, end))

    def on_anomaly(self, flow: FlowInfo, anomaly: Anomaly) -> None:
        assert self.infos[flow.index] is flow
        self.events.append(("anomaly", flow.index, anomaly))

    def on_flow_closed(self, flow: FlowInfo, stats: FlowStats) -> None:
        assert self.infos[flow.index] is flow
        assert flow.index not in self.closed, "closed twice"
        self.closed[flow.index] = stats
        self.events.append(("closed", flow.index, stats))

    # -- views -----------------------------------------------------------------------------

    def of(self, kind: str, index: int | None = None) -> list[object]:
        return [v for k, i, v in self.events if k == kind and (index is None or i == index)]

    def stream(self, index: int, direction: Direction) -> bytes:
        """The bytes delivered in one direction, checking that they and the gaps are contiguous."""
        out = bytearray()
        pos: int | None = None
        for kind, i, value in self.events:
            if i != index or kind not in ("data", "gap"):
                continue
            assert isinstance(value, StreamData | StreamGap)
            if value.direction is not direction:
                continue
            if pos is not None:
                assert value.offset == pos, f"stream jumps from {pos} to {value.offset}"
            if isinstance(value, StreamData):
                out += value.data
                pos = value.offset + len(value.data)
            else:
                pos = value.offset + value.length
        return bytes(out)

    def gaps(self, index: int | None = None) -> list[StreamGap]:
        return [v for v in self.of("gap", index) if isinstance(v, StreamGap)]

    def ends(self, index: int | None = None) -> list[StreamEnd]:
        return [v for v in self.of("end", index) if isinstance(v, StreamEnd)]

    def anomalies(self, kind: FlowAnomaly | None = None, index: int | None = None) -> list[Anomaly]:
        return [
            v
            for v in self.of("anomaly", index)
            if isinstance(v, Anomaly) and (kind is None or v.kind is kind)
        ]

    def kinds(self, index: int) -> list[str]:
        """The sequence of event kinds of one flow."""
        return [k for k, i, _ in self.events if i == index]
