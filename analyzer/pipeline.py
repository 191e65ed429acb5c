"""Wire the layers together: capture → flows → SMTP observer → sessions.

The only module that knows every layer. It decides which TCP flows are SMTP (by content, on any
port, with the well-known mail ports as a fallback), feeds each SMTP flow's streams to its own
observer and hands on finished sessions as their connections close, so memory is bounded by the
number of open connections, not by the size of the capture.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from analyzer._common import Anomaly, Direction
from analyzer.capture import Capture, CaptureFile, CaptureStats, open_capture
from analyzer.flows import FlowTable
from analyzer.flows.events import (
    EndKind,
    FlowInfo,
    FlowStats,
    StreamData,
    StreamEnd,
    StreamGap,
)
from analyzer.flows.record import StreamPair
from analyzer.session.builder import SessionBuilder
from analyzer.session.model import SmtpSession
from analyzer.smtp import (
    SmtpObserver,
    looks_like_smtp_client,
    looks_like_smtp_server,
    sender_is_server,
)

MAIL_PORTS = frozenset({25, 587, 2525})
"""Cleartext mail ports: 25 (relay, RFC 5321), 587 (submission, RFC 6409), 2525 (common spare).
Flows on these ports are SMTP even when their first bytes do not say so (a capture that starts
in the middle of a message). 465 is implicit TLS (RFC 8314) and is never parsed as lines."""

SNIFF_BYTES = 64
"""Bytes of each direction looked at before deciding that a flow on another port is not SMTP."""

PathLike = str | os.PathLike[str]


@dataclass(slots=True)
class _Flow:
    """What the pipeline keeps for one open flow."""

    info: FlowInfo
    observer: SmtpObserver
    builder: SessionBuilder
    smtp: bool | None = None
    sniffed: dict[Direction, bytes] = field(default_factory=dict)
    streams: StreamPair | None = None


@dataclass(slots=True)
class PipelineStats:
    """How many TCP flows were seen and how many carried SMTP."""

    tcp_flows: int = 0
    smtp_sessions: int = 0
    non_smtp_flows: int = 0


class _SessionSink:
    """The flow table's sink: runs one SMTP observer per flow and builds sessions."""

    def __init__(self, capture_id: str, keep_streams: bool) -> None:
        self.capture_id = capture_id
        self.keep_streams = keep_streams
        self.table: FlowTable | None = None
        self.flows: dict[int, _Flow] = {}
        self.finished: deque[SmtpSession] = deque()
        self.stats = PipelineStats()

    def on_flow_start(self, flow: FlowInfo) -> None:
        self.stats.tcp_flows += 1
        state = _Flow(flow, SmtpObserver(), SessionBuilder(flow))
        if flow.server.port in MAIL_PORTS or flow.client.port in MAIL_PORTS:
            state.smtp = True
        if self.keep_streams:
            state.streams = StreamPair()
        self.flows[flow.index] = state

    def _sniff(self, state: _Flow, data: StreamData) -> None:
        seen = state.sniffed.get(data.direction, b"") + data.data[:SNIFF_BYTES]
        state.sniffed[data.direction] = seen
        if data.direction is Direction.SERVER_TO_CLIENT:
            hit = looks_like_smtp_server(seen)
        else:
            hit = looks_like_smtp_client(seen)
        if hit:
            state.smtp = True
        elif len(seen) >= SNIFF_BYTES or b"\n" in seen:
            state.smtp = False
            self.stats.non_smtp_flows += 1
            del self.flows[state.info.index]
            if self.table is not None:
                self.table.ignore(state.info)

    def on_data(self, flow: FlowInfo, data: StreamData) -> None:
        state = self.flows.get(flow.index)
        if state is None:
            return
        if state.smtp is None:
            self._sniff(state, data)
            if state.smtp is False:
                return
        if state.streams is not None:
            state.streams.of(data.direction).add(data.offset, data.data, data.frame, data.ts)
        state.builder.add(
            state.observer.feed(
                data.direction, data.data, offset=data.offset, ts=data.ts, frame=data.frame
            )
        )

    def on_gap(self, flow: FlowInfo, gap: StreamGap) -> None:
        state = self.flows.get(flow.index)
        if state is None:
            return
        if state.streams is not None:
            state.streams.of(gap.direction).add_gap(gap.offset, gap.length)
        state.builder.add(
            state.observer.feed_gap(
                gap.direction, offset=gap.offset, length=gap.length, ts=gap.ts, frame=gap.frame
            )
        )

    def on_end(self, flow: FlowInfo, end: StreamEnd) -> None:
        state = self.flows.get(flow.index)
        if state is None:
            return
        state.builder.add_end(end)
        state.builder.add(
            state.observer.feed_close(
                end.direction,
                reset=end.kind is EndKind.RST,
                offset=end.offset,
                ts=end.ts,
                frame=end.frame,
            )
        )

    def on_anomaly(self, flow: FlowInfo, anomaly: Anomaly) -> None:
        state = self.flows.get(flow.index)
        if state is not None:
            state.builder.add_anomaly(anomaly)

    def on_flow_closed(self, flow: FlowInfo, stats: FlowStats) -> None:
        state = self.flows.pop(flow.index, None)
        if state is None:
            return
        if not state.smtp:
            self.stats.non_smtp_flows += 1
            return
        state.builder.add(state.observer.feed_eof(ts=stats.end_ts or flow.start_ts))
        tls = state.observer.tls_bytes
        session = state.builder.build(
            f"{self.capture_id}#{flow.index}",
            stats,
            tls_bytes=(
                tls.get(Direction.CLIENT_TO_SERVER, 0),
                tls.get(Direction.SERVER_TO_CLIENT, 0),
            ),
            streams=state.streams,
        )
        self.stats.smtp_sessions += 1
        self.finished.append(session)


def _role_hint(first_bytes: bytes, sport: int, dport: int) -> bool | None:
    return sender_is_server(first_bytes, sport, dport)


@dataclass(slots=True)
class CaptureRun:
    """One capture read end to end: its sessions (in the order their connections ended) and counts."""

    capture_id: str
    files: tuple[CaptureFile, ...]
    capture_stats: CaptureStats
    pipeline_stats: PipelineStats
    sessions: list[SmtpSession]


def iter_sessions(
    capture: Capture, *, keep_streams: bool = False, stats: PipelineStats | None = None
) -> Iterator[SmtpSession]:
    """Yield each SMTP session of `capture` as soon as its connection is finished."""
    sink = _SessionSink(capture.capture_id, keep_streams)
    if stats is not None:
        sink.stats = stats
    table = FlowTable(sink, role_hint=_role_hint)
    sink.table = table
    finished = sink.finished
    add = table.add
    for segment in capture.segments():
        add(segment)
        while finished:
            yield finished.popleft()
    table.finish()
    while finished:
        yield finished.popleft()


def run_capture(
    paths: Sequence[PathLike], capture_id: str = "single", *, keep_streams: bool = False
) -> CaptureRun:
    """Read a capture (one file or a rotation set) and return every session, ordered by start."""
    capture = open_capture(list(paths), capture_id)
    stats = PipelineStats()
    sessions = list(iter_sessions(capture, keep_streams=keep_streams, stats=stats))
    sessions.sort(key=lambda s: (s.start_ts, s.flow.index))
    return CaptureRun(capture_id, capture.files, capture.stats, stats, sessions)


def read_sessions(
    path: PathLike | Sequence[PathLike], capture_id: str = "single"
) -> list[SmtpSession]:
    """Every SMTP session in a capture file (or a rotation set given as a list), ordered by start."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return run_capture(paths, capture_id).sessions
