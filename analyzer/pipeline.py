"""Wire the layers together: capture → flows → SMTP observer → sessions.

The only module that knows every layer. It decides which TCP flows are SMTP (by content, on any
port, with the well-known mail ports as a fallback), feeds each SMTP flow's streams to its own
observer and hands on finished sessions as their connections close, so memory is bounded by the
number of open connections, not by the size of the capture.

The flow table takes the segments of connections it knows straight from the decoder (no
`Segment` is built for them). `read_shard` reads one shard of a capture's conversations and
reports every conversation as it is numbered and as it ends, with where in the capture that
happened; `analyzer.parallel` runs it in several processes and merges what they report.
"""

from __future__ import annotations

import gc
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Protocol

from analyzer._common import Anomaly, Direction
from analyzer.capture import Capture, CaptureFile, CaptureStats, open_capture
from analyzer.capture.conversation import Shard
from analyzer.correlate import (
    ClockEstimate,
    PairAlignment,
    SessionPair,
    align_pair,
    estimate_offset,
    pair_sessions,
)
from analyzer.detect import Finding, detect_pair, detect_single, number, unmatched
from analyzer.errors import CaptureError
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
from analyzer.tunnel import PreambleSkipper, is_connect_request

MAIL_PORTS: Final = frozenset({25, 587, 2525})
"""Cleartext mail ports: 25 (relay, RFC 5321), 587 (submission, RFC 6409), 2525 (common spare).
Flows on these ports are SMTP even when their first bytes do not say so (a capture that starts
in the middle of a message). 465 is implicit TLS (RFC 8314) and is never parsed as lines."""

SNIFF_BYTES: Final = 64
"""Bytes of each direction looked at before deciding that a flow on another port is not SMTP."""

PathLike = str | os.PathLike[str]

YOUNG_COLLECTION_THRESHOLD: Final = 1_000_000
"""Allocations between two collections of the youngest generation while a capture is read.

Reading allocates and frees a few short-lived objects per packet. At the default threshold
(700) the cyclic collector runs hundreds of times per gigabyte and traverses what happens to be
alive each time, about a tenth of the reading time; at 200,000 it still took 3% of the compiled
build's; at this many, almost nothing, since most of those objects die of their reference
counts first. Memory does not grow for it (the same peak on 250 MB and 1 GB captures): closed
flows break their own reference cycles, and the collector still runs."""


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the youngest generation's collections less often while a capture is read."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_COLLECTION_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class _Flow:
    """What the pipeline keeps for one open flow."""

    __slots__ = ("builder", "info", "observer", "smtp", "sniffed", "streams", "tunnel")

    def __init__(self, info: FlowInfo, observer: SmtpObserver, builder: SessionBuilder) -> None:
        self.info = info
        self.observer = observer
        self.builder = builder
        self.smtp: bool | None = None
        self.sniffed: dict[Direction, bytes] = {}
        self.streams: StreamPair | None = None
        self.tunnel: dict[Direction, PreambleSkipper] | None = None
        """HTTP CONNECT preambles to skip, when the flow is SMTP through a proxy tunnel."""


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
        self.on_closed: Callable[[FlowInfo, SmtpSession | None], None] | None = None
        """When set, told of every flow that closes (with its session, or None when it carried
        no SMTP) instead of queueing sessions in `finished`."""

    def on_flow_start(self, flow: FlowInfo) -> None:
        self.stats.tcp_flows += 1
        state = _Flow(flow, SmtpObserver(), SessionBuilder(flow))
        if flow.server.port in MAIL_PORTS or flow.client.port in MAIL_PORTS:
            state.smtp = True
        if self.keep_streams:
            state.streams = StreamPair()
        self.flows[flow.index] = state

    def _sniff(self, state: _Flow, data: StreamData) -> bool | None:
        """Look at the first bytes of a flow not yet known to be SMTP; returns (and records in
        `state.smtp`) True when it is, False when it is not, None when still undecided."""
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
        return state.smtp

    def on_data(self, flow: FlowInfo, data: StreamData) -> None:
        state = self.flows.get(flow.index)
        if state is None:
            return
        if (
            state.smtp is None
            and state.tunnel is None
            and data.direction is Direction.CLIENT_TO_SERVER
            and Direction.CLIENT_TO_SERVER not in state.sniffed
            and is_connect_request(data.data[:SNIFF_BYTES])
        ):
            # Perhaps SMTP through an HTTP proxy: decided on the tunnelled bytes.
            state.tunnel = {d: PreambleSkipper() for d in Direction}
        if state.tunnel is not None and data.marks is not None:
            for piece in data.pieces():
                self._take(state, piece)
                if self.flows.get(flow.index) is not state:
                    return
            return
        self._take(state, data)

    def _take(self, state: _Flow, data: StreamData) -> None:
        """Hand one delivery of in-order bytes to the flow's observer."""
        if state.tunnel is not None:
            offset, payload = state.tunnel[data.direction].feed(data.offset, data.data)
            if not payload:
                return
            data = StreamData(data.direction, offset, payload, data.frame, data.ts)
        # The decision comes back from `_sniff`: testing `state.smtp` again here would keep
        # mypy's narrowing to None, which mypyc compiles into a check that fails on a bool.
        if state.smtp is None and self._sniff(state, data) is False:
            return
        if state.streams is not None:
            record = state.streams.of(data.direction)
            for piece in data.pieces():
                record.add(piece.offset, piece.data, piece.frame, piece.ts)
        events = state.observer.feed(
            data.direction,
            data.data,
            offset=data.offset,
            ts=data.ts,
            frame=data.frame,
            marks=data.marks,
        )
        if events:
            state.builder.add(events)

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
        if state is None or not state.smtp:
            if state is not None:
                self.stats.non_smtp_flows += 1
            if self.on_closed is not None:
                self.on_closed(flow, None)
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
        if self.on_closed is not None:
            self.on_closed(flow, session)
        else:
            self.finished.append(session)


def _role_hint(first_bytes: bytes, sport: int, dport: int) -> bool | None:
    return sender_is_server(first_bytes, sport, dport)


@dataclass(slots=True)
class CaptureRun:
    """One capture read end to end: its sessions (ordered by start) and counts."""

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
    try:
        for segment in capture.segments(take=table):
            add(segment)
            while finished:
                yield finished.popleft()
        table.finish()
    finally:
        sink.table = None  # the table holds the sink: no cycle to leave behind
    while finished:
        yield finished.popleft()


END_POSITION: Final = 1 << 62
"""A position after every record of every file: where `FlowTable.finish` closes what is left."""
FRAME_BITS: Final = 40
"""A record's position is `file_no << FRAME_BITS | frame_no`: file number, then frame number
(files of up to 2**40 records)."""
PROGRESS_INTERVAL: Final = 0.01
"""Seconds of capture time after which a shard reader reports how far it got, even while it
reads only other shards' segments."""


class ShardListener(Protocol):
    """What `read_shard` reports, each call with the position of the record being read.

    Positions never decrease. A conversation is `opened` at exactly the record that made the
    flow table number it; `closed` and `progress` may name an earlier record than the one
    being read (segments the flow table took straight from the decoder do not report theirs).
    """

    def opened(self, position: int, index: int) -> None:
        """The conversation numbered `index` (in this shard) began."""

    def closed(self, position: int, index: int, session: SmtpSession | None) -> None:
        """Conversation `index` ended: its session, or None when it carried no SMTP."""

    def progress(self, position: int) -> None:
        """Every record up to and including `position` has been read."""


class _Cursor:
    """Where `read_shard` is, and how many conversations it has announced."""

    __slots__ = ("announced", "position")

    def __init__(self) -> None:
        self.position = 0
        self.announced = 0


def read_shard(
    capture: Capture,
    listener: ShardListener,
    *,
    shard: Shard | None = None,
    stats: PipelineStats | None = None,
) -> None:
    """Read `capture`, or only the conversations of `shard`, telling `listener` as conversations
    begin and end (see `ShardListener`).

    Conversation numbers count the conversations this reader sees: with a shard they are local
    to it, and `position`s let a caller number every conversation of the capture as one reader
    would. Each session's `id` and `flow.index` carry the local number. The idle sweep runs on
    the timestamps of every TCP segment, the other shards' included, so that each conversation
    is treated exactly as when the whole capture is read at once.
    """
    sink = _SessionSink(capture.capture_id, keep_streams=False)
    if stats is not None:
        sink.stats = stats
    table = FlowTable(sink, role_hint=_role_hint)
    sink.table = table
    cursor = _Cursor()
    opened, progress = listener.opened, listener.progress

    def announce() -> None:
        while cursor.announced < table.next_index:
            opened(cursor.position, cursor.announced)
            cursor.announced += 1

    def closed(flow: FlowInfo, session: SmtpSession | None) -> None:
        announce()
        listener.closed(cursor.position, flow.index, session)

    def skipped(ts: float, file_no: int, frame_no: int) -> float:
        cursor.position = where = (file_no << FRAME_BITS) | frame_no
        next_sweep = table.tick(ts)
        progress(where)
        return min(next_sweep, ts + PROGRESS_INTERVAL)

    sink.on_closed = closed
    add = table.add
    segments = capture.segments(
        shard=shard, skipped=skipped if shard is not None else None, take=table
    )
    with _fewer_collections():
        for segment in segments:
            frame = segment.frame
            cursor.position = where = (frame.file_no << FRAME_BITS) | frame.frame_no
            add(segment)
            announce()
            progress(where)
        cursor.position = END_POSITION
        table.finish()
        sink.table = None  # the table holds the sink: no cycle to leave behind
        announce()
        progress(END_POSITION)


def check_captures(
    paths: Sequence[str], engine: str = "native"
) -> tuple[list[str], list[CaptureError]]:
    """The files that open as captures, and the problem with each one that does not.

    With the tshark engine a file is usable when tshark reads it (it reads formats the native
    reader does not)."""
    good: list[str] = []
    problems: list[CaptureError] = []
    for path in paths:
        try:
            if engine == "tshark":
                from analyzer.engines.tshark import check_capture_tshark

                check_capture_tshark(path)
            else:
                open_capture([path], "probe")
        except CaptureError as exc:
            problems.append(exc)
        else:
            good.append(path)
    return good, problems


def run_capture(
    paths: Sequence[PathLike], capture_id: str = "single", *, keep_streams: bool = False
) -> CaptureRun:
    """Read a capture (one file or a rotation set) and return every session, ordered by start."""
    capture = open_capture(list(paths), capture_id)
    stats = PipelineStats()
    with _fewer_collections():
        sessions = list(iter_sessions(capture, keep_streams=keep_streams, stats=stats))
    sessions.sort(key=lambda s: (s.start_ts, s.flow.index))
    return CaptureRun(capture_id, capture.files, capture.stats, stats, sessions)


def read_sessions(
    path: PathLike | Sequence[PathLike], capture_id: str = "single"
) -> list[SmtpSession]:
    """Every SMTP session in a capture file (or a rotation set given as a list), by start."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return run_capture(paths, capture_id).sessions


# -- two captures (or one) → findings ----------------------------------------------------------


class Role:
    CLIENT_SIDE: Final = "client-side"
    SERVER_SIDE: Final = "server-side"
    SINGLE: Final = "single"


CAPTURE_IDS: Final = {Role.CLIENT_SIDE: "client", Role.SERVER_SIDE: "server", Role.SINGLE: "single"}
"""Capture ids used in session ids (`client#3`) and evidence."""


@dataclass(slots=True)
class CaptureInfo:
    """One analysed capture (a file or a rotation set) and what reading it found."""

    id: str
    role: str
    paths: tuple[str, ...]
    files: tuple[CaptureFile, ...]
    stats: CaptureStats
    pipeline: PipelineStats

    @property
    def first_ts(self) -> float | None:
        return self.stats.first_ts

    @property
    def last_ts(self) -> float | None:
        return self.stats.last_ts


@dataclass(slots=True)
class Analysis:
    """Everything `analyze` found: sessions, pairs, alignments, findings, clock offset."""

    captures: list[CaptureInfo]
    sessions: list[SmtpSession]
    pairs: list[SessionPair]
    alignments: list[PairAlignment]
    findings: list[Finding]
    clock: ClockEstimate | None
    clock_given: bool = False

    @property
    def two_sided(self) -> bool:
        return self.clock is not None

    def peer_of(self, session_id: str) -> str | None:
        for pair in self.pairs:
            if pair.client_side.id == session_id:
                return pair.server_side.id
            if pair.server_side.id == session_id:
                return pair.client_side.id
        return None

    def session(self, session_id: str) -> SmtpSession | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    def _repr_html_(self) -> str:
        from analyzer.display import analysis_html

        return analysis_html(self)


def _as_paths(value: PathLike | Sequence[PathLike] | None) -> list[PathLike]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


def _read(
    paths: list[PathLike], role: str, keep_streams: bool
) -> tuple[CaptureInfo, list[SmtpSession]]:
    run = run_capture(paths, CAPTURE_IDS[role], keep_streams=keep_streams)
    info = CaptureInfo(
        id=run.capture_id,
        role=role,
        paths=tuple(os.fspath(p) for p in paths),
        files=run.files,
        stats=run.capture_stats,
        pipeline=run.pipeline_stats,
    )
    return info, run.sessions


def analyze(
    single: PathLike | Sequence[PathLike] | None = None,
    *,
    client_side: PathLike | Sequence[PathLike] | None = None,
    server_side: PathLike | Sequence[PathLike] | None = None,
    time_offset: float | None = None,
) -> Analysis:
    """Analyse one capture, or the two sides of a firewall, and return sessions and findings.

    `client_side` is captured between the client and the firewall (outside), `server_side`
    between the firewall and the server (inside); each may be a rotation set (a list of files).
    `time_offset` (server-side clock minus client-side clock, seconds) overrides the estimate.
    """
    from analyzer.errors import UsageError

    if single is not None and (client_side is not None or server_side is not None):
        raise UsageError("give one capture, or --client-side and --server-side, not both")
    if single is None and client_side is None and server_side is None:
        raise UsageError("no capture given")
    two_sided = client_side is not None and server_side is not None
    infos: list[CaptureInfo] = []
    sessions_of: dict[str, list[SmtpSession]] = {}
    for role, paths in (
        (Role.SINGLE, _as_paths(single)),
        (Role.CLIENT_SIDE, _as_paths(client_side)),
        (Role.SERVER_SIDE, _as_paths(server_side)),
    ):
        if paths:
            info, sessions = _read(paths, role, keep_streams=two_sided)
            infos.append(info)
            sessions_of[role] = sessions
    all_sessions = [s for info in infos for s in sessions_of[info.role]]
    start_of = {s.id: s.start_ts for s in all_sessions}
    if not two_sided:
        findings = detect_single(all_sessions)
        return Analysis(infos, all_sessions, [], [], number(findings, start_of), None)

    client, server = sessions_of[Role.CLIENT_SIDE], sessions_of[Role.SERVER_SIDE]
    if time_offset is not None:
        clock = ClockEstimate(time_offset, "given", 0)
    else:
        clock = estimate_offset(client, server)
    pairing = pair_sessions(client, server, clock)
    alignments = [align_pair(pair) for pair in pairing.pairs]
    found: list[Finding] = []
    for alignment in alignments:
        found.extend(detect_pair(alignment))
    client_info, server_info = infos[0], infos[1]
    found.extend(unmatched(pairing.client_only, "server-side", _span(server_info, -clock.offset_s)))
    found.extend(unmatched(pairing.server_only, "client-side", _span(client_info, clock.offset_s)))
    found.extend(detect_single(list(pairing.client_only) + list(pairing.server_only)))
    return Analysis(
        infos,
        all_sessions,
        list(pairing.pairs),
        alignments,
        number(found, start_of),
        clock,
        clock_given=time_offset is not None,
    )


def _span(info: CaptureInfo, shift: float) -> tuple[float, float] | None:
    """A capture's time span moved onto the other capture's clock."""
    if info.first_ts is None or info.last_ts is None:
        return None
    return info.first_ts + shift, info.last_ts + shift
