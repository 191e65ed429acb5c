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
import hashlib
import itertools
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from analyzer._common import Anomaly, Direction
from analyzer.capture import Capture, CaptureFile, CaptureStats, open_capture
from analyzer.capture.conversation import Shard
from analyzer.capture.source import identity, is_stream, rereadable
from analyzer.correlate import (
    ClockEstimate,
    PairAlignment,
    Pairing,
    SessionPair,
    align_pair,
    estimate_offset,
    pair_sessions,
)
from analyzer.correlate.coverage import CaptureSpans
from analyzer.correlate.orientation import Orientation, judge_orientation
from analyzer.correlate.overlap import (
    Overlap,
    OverlapKind,
    corroborated_pairs,
    judge_overlap,
    same_traffic,
)
from analyzer.detect import Confidence, Finding, detect_pair, detect_single, number, unmatched
from analyzer.errors import CaptureError, UsageError
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
from analyzer.smtp.detect import IMPLICIT_TLS_PORTS, looks_like_tls_record
from analyzer.smtp.events import AnomalySeen, SmtpAnomaly
from analyzer.smtp.secrets import (
    CredentialDigest,
    CredentialKey,
    blank_secrets,
    digest_secrets,
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
    """What the pipeline keeps for one open flow. Its observer and session builder are made
    when first needed: a connection that never carries a byte (a SYN flood, a port scan) costs
    only this."""

    __slots__ = (
        "_builder",
        "_observer",
        "client_line_ended",
        "info",
        "smtp",
        "sniffed",
        "streams",
        "tunnel",
    )

    def __init__(self, info: FlowInfo) -> None:
        self.info = info
        self.client_line_ended = False
        """A line feed was among the client's bytes: it sent at least one whole line."""
        self._observer: SmtpObserver | None = None
        self._builder: SessionBuilder | None = None
        self.smtp: bool | None = None
        self.sniffed: dict[Direction, bytes] = {}
        self.streams: StreamPair | None = None
        self.tunnel: dict[Direction, PreambleSkipper] | None = None
        """HTTP CONNECT preambles to skip, when the flow is SMTP through a proxy tunnel."""

    @property
    def observer(self) -> SmtpObserver:
        observer = self._observer
        if observer is None:
            observer = self._observer = SmtpObserver()
        return observer

    @property
    def builder(self) -> SessionBuilder:
        builder = self._builder
        if builder is None:
            builder = self._builder = SessionBuilder(self.info)
        return builder


MAX_PORTS_COUNTED: Final = 32
"""Distinct server ports counted per capture; connections to further ports are only summed
(`PipelineStats.other_ports`), so a port scan cannot grow the tally."""


MAX_SILENT_CLIENTS_COUNTED: Final = 10_000
"""Distinct client addresses remembered among the connections without payload: a flood from
spoofed sources counts the first this many, then only says there were more."""


@dataclass(slots=True)
class SilentConnections:
    """Mail-port connections that are not SMTP sessions, only summarised here: those that
    carried no payload either way (half-open or refused SYNs, a port scan, a probe that only
    connects), and, counted apart, those whose client sent bytes without ending a line while the
    server sent nothing (`spoke_no_smtp`)."""

    count: int = 0
    client_bytes: int = 0
    """Payload bytes the clients sent, summed."""
    unanswered: int = 0
    """Of those, connections from which the capture holds no packet of the server at all."""
    reset: int = 0
    """Of those, connections ended by a reset (either way)."""
    first_ts: float | None = None
    last_ts: float | None = None
    clients: set[str] = field(default_factory=set)
    """Distinct client addresses, the first `MAX_SILENT_CLIENTS_COUNTED`."""
    more_clients: bool = False
    """More distinct clients than `clients` holds were seen."""

    def add(self, flow: FlowInfo, stats: FlowStats) -> None:
        self.count += 1
        self.client_bytes += stats.client_to_server.bytes
        if stats.server_to_client.packets == 0:
            self.unanswered += 1
        ends = (stats.client_to_server.end, stats.server_to_client.end)
        if any(end is not None and end.kind is EndKind.RST for end in ends):
            self.reset += 1
        start, end_ts = flow.start_ts, stats.end_ts or flow.start_ts
        if self.first_ts is None or start < self.first_ts:
            self.first_ts = start
        if self.last_ts is None or end_ts > self.last_ts:
            self.last_ts = end_ts
        clients = self.clients
        if flow.client.ip not in clients:
            if len(clients) < MAX_SILENT_CLIENTS_COUNTED:
                clients.add(flow.client.ip)
            else:
                self.more_clients = True


def carried_nothing(stats: FlowStats) -> bool:
    """No payload byte crossed either way, delivered or lost (a gap is payload the capture
    missed)."""
    c2s, s2c = stats.client_to_server, stats.server_to_client
    return (
        c2s.payload_packets == 0
        and s2c.payload_packets == 0
        and c2s.bytes == 0
        and s2c.bytes == 0
        and c2s.gap_bytes == 0
        and s2c.gap_bytes == 0
    )


def spoke_no_smtp(stats: FlowStats, client_line_ended: bool) -> bool:
    """Neither side said one SMTP line: the server sent nothing (delivered or lost) and the
    client's bytes, if any, never ended a line. An SMTP server speaks first (RFC 5321 §3.1),
    and a client that talks before the greeting still ends its command with CRLF; a connection
    that only carried a fragment (a probe, a flood of one-byte connections) is not a session.
    Connections that are TLS from their first byte are decided before this."""
    c2s, s2c = stats.client_to_server, stats.server_to_client
    return (
        not client_line_ended
        and s2c.payload_packets == 0
        and s2c.bytes == 0
        and s2c.gap_bytes == 0
        and c2s.gap_bytes == 0
    )


@dataclass(slots=True)
class PipelineStats:
    """How many TCP flows were seen, to which server ports, and how many carried SMTP."""

    tcp_flows: int = 0
    smtp_sessions: int = 0
    non_smtp_flows: int = 0
    server_ports: dict[int, int] = field(default_factory=dict)
    """Connections per server port, for the first `MAX_PORTS_COUNTED` ports seen."""
    other_ports: int = 0
    """Connections to ports beyond those."""
    silent: SilentConnections = field(default_factory=SilentConnections)
    """Mail-port connections without payload, which are not made into sessions."""
    unspoken: SilentConnections = field(default_factory=SilentConnections)
    """Mail-port connections with payload but without one SMTP line (`spoke_no_smtp`), which
    are not made into sessions either."""

    def count_port(self, port: int) -> None:
        ports = self.server_ports
        if port in ports:
            ports[port] += 1
        elif len(ports) < MAX_PORTS_COUNTED:
            ports[port] = 1
        else:
            self.other_ports += 1


class _SessionSink:
    """The flow table's sink: runs one SMTP observer per flow and builds sessions."""

    def __init__(
        self, capture_id: str, keep_streams: bool, credential_key: CredentialKey | None = None
    ) -> None:
        self.capture_id = capture_id
        self.keep_streams = keep_streams
        self.credential_key = CredentialKey() if credential_key is None else credential_key
        """Digests the AUTH credentials of the kept streams (`smtp.secrets`); never stored."""
        self.credentials: dict[int, list[CredentialDigest]] = {}
        """The credential digests of each flow whose streams are kept, until its session is
        handed on (`handed_on`)."""
        self.table: FlowTable | None = None
        self.flows: dict[int, _Flow] = {}
        self.finished: deque[SmtpSession] = deque()
        self.stats = PipelineStats()
        self.opened: set[int] = set()
        """Flows whose first delivered bytes have been looked at."""
        self.tls_only: dict[int, dict[Direction, int]] = {}
        """Mail-port flows that are TLS from their first byte (implicit TLS, or a capture that
        started after STARTTLS): their bytes are counted, never parsed as SMTP lines."""
        self.on_closed: Callable[[FlowInfo, SmtpSession | None], None] | None = None
        """When set, told of every flow that closes (with its session, or None when it carried
        no SMTP) instead of queueing sessions in `finished`."""

    def on_flow_start(self, flow: FlowInfo) -> None:
        self.stats.tcp_flows += 1
        self.stats.count_port(flow.server.port)
        state = _Flow(flow)
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
        if not hit and state.info.server.port in IMPLICIT_TLS_PORTS:
            hit = looks_like_tls_record(seen)  # submission over implicit TLS (RFC 8314 §3.3)
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
        index = state.info.index
        if index not in self.opened:
            # The flow's first bytes, either way: TLS there means no SMTP line will follow.
            self.opened.add(index)
            if looks_like_tls_record(data.data):
                self.tls_only[index] = dict.fromkeys(Direction, 0)
                state.builder.add([_tls_from_first_byte(data)])
        counts = self.tls_only.get(index)
        if counts is not None:
            counts[data.direction] += len(data.data)
            return
        if not state.client_line_ended and data.direction is Direction.CLIENT_TO_SERVER:
            state.client_line_ended = b"\n" in data.data
        events = state.observer.feed(
            data.direction,
            data.data,
            offset=data.offset,
            ts=data.ts,
            frame=data.frame,
            marks=data.marks,
        )
        # The bytes were kept above, before the observer found the credentials among them.
        self._keep_secrets(state)
        if events:
            state.builder.add(events)

    def _keep_secrets(self, state: _Flow) -> None:
        """Digest, then blank in the kept client bytes, the AUTH credentials the observer
        found since it was last asked (`smtp.secrets`): due after every call that feeds the
        observer, since a line cut by a gap, a close or the capture's end is a line too."""
        secrets = state.observer.take_secrets()
        if secrets and state.streams is not None:
            record = state.streams.client_to_server
            digests = digest_secrets(
                self.credential_key, record.data, record.base, record.gaps, secrets
            )
            self.credentials.setdefault(state.info.index, []).extend(digests)
            blank_secrets(record.data, record.base, secrets)

    def handed_on(self, session: SmtpSession) -> SmtpSession:
        """`session` with the digests of the credentials in its kept streams."""
        digests = self.credentials.pop(session.flow.index, None)
        if digests is None:
            return session
        return replace(session, credentials=tuple(digests))

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
        self._keep_secrets(state)

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
        self._keep_secrets(state)

    def on_anomaly(self, flow: FlowInfo, anomaly: Anomaly) -> None:
        state = self.flows.get(flow.index)
        if state is not None:
            state.builder.add_anomaly(anomaly)

    def on_flow_closed(self, flow: FlowInfo, stats: FlowStats) -> None:
        state = self.flows.pop(flow.index, None)
        self.opened.discard(flow.index)
        if state is None or not state.smtp:
            if state is not None:
                self.stats.non_smtp_flows += 1
            if self.on_closed is not None:
                self.on_closed(flow, None)
            return
        tls_only = self.tls_only.pop(flow.index, None)
        if tls_only is None and spoke_no_smtp(stats, state.client_line_ended):
            # No line of SMTP: a connection attempt, summarised rather than made a session.
            self.credentials.pop(flow.index, None)
            if carried_nothing(stats):
                self.stats.silent.add(flow, stats)
            else:
                self.stats.unspoken.add(flow, stats)
            if self.on_closed is not None:
                self.on_closed(flow, None)
            return
        state.builder.add(state.observer.feed_eof(ts=stats.end_ts or flow.start_ts))
        self._keep_secrets(state)
        tls = tls_only or state.observer.tls_bytes
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


TLS_ONLY_NOTE: Final = (
    "TLS from the first byte: implicit TLS or a capture that started after STARTTLS"
)


def _tls_from_first_byte(data: StreamData) -> AnomalySeen:
    return AnomalySeen(
        SmtpAnomaly.TLS_FROM_FIRST_BYTE,
        data.direction,
        TLS_ONLY_NOTE,
        data.offset,
        data.frame,
        data.ts,
    )


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
    capture: Capture,
    *,
    keep_streams: bool = False,
    stats: PipelineStats | None = None,
    credential_key: CredentialKey | None = None,
) -> Iterator[SmtpSession]:
    """Yield each SMTP session of `capture` as soon as its connection is finished.

    With `keep_streams`, each session's AUTH credentials are digested with `credential_key`
    (a new key when None): give the captures that are to be compared the same key."""
    sink = _SessionSink(capture.capture_id, keep_streams, credential_key)
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
                yield sink.handed_on(finished.popleft())
        table.finish()
    finally:
        sink.table = None  # the table holds the sink: no cycle to leave behind
    while finished:
        yield sink.handed_on(finished.popleft())


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
            if engine == "tshark" and is_stream(path):
                raise CaptureError(path, "the tshark engine reads files only: save it first")
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
    paths: Sequence[PathLike],
    capture_id: str = "single",
    *,
    keep_streams: bool = False,
    credential_key: CredentialKey | None = None,
) -> CaptureRun:
    """Read a capture (one file or a rotation set) and return every session, ordered by start."""
    capture = open_capture(list(paths), capture_id)
    stats = PipelineStats()
    with _fewer_collections():
        sessions = list(
            iter_sessions(
                capture, keep_streams=keep_streams, stats=stats, credential_key=credential_key
            )
        )
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
    overlap: Overlap | None = None
    """Two captures: whether they are shown to hold the same connections."""
    orientation: Orientation | None = None
    """Two captures: which side is which, judged from the captures (None when they are not
    shown to overlap)."""
    sides_swapped: bool = False
    """The captures were given the wrong way round and were analysed the right way round:
    `captures[0]` is the file given as the server side."""
    keep_orientation: bool = False
    """The sides were analysed as given, whatever the captures show."""

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
    paths: list[PathLike],
    role: str,
    keep_streams: bool,
    credential_key: CredentialKey | None = None,
) -> tuple[CaptureInfo, list[SmtpSession]]:
    run = run_capture(
        paths, CAPTURE_IDS[role], keep_streams=keep_streams, credential_key=credential_key
    )
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
    keep_orientation: bool = False,
) -> Analysis:
    """Analyse one capture, or the two sides of a firewall, and return sessions and findings.

    `client_side` is captured between the client and the firewall (outside), `server_side`
    between the firewall and the server (inside); each may be a rotation set (a list of files).
    `time_offset` (server-side clock minus client-side clock, seconds) overrides the estimate.
    When the captures show that they were given the wrong way round (`correlate.orientation`),
    they are analysed the right way round and `Analysis.sides_swapped` says so;
    `keep_orientation` analyses them as given whatever they show.

    Raises `UsageError` for one file (or the same packets) given for both sides, and for
    several files given as one capture that are not one rotation set.
    """
    if single is not None and (client_side is not None or server_side is not None):
        raise UsageError("give one capture, or --client-side and --server-side, not both")
    if single is None and client_side is None and server_side is None:
        raise UsageError("no capture given")
    if client_side is None or server_side is None:
        paths = _as_paths(single if single is not None else client_side or server_side)
        role = (
            Role.SINGLE
            if single is not None
            else Role.CLIENT_SIDE
            if client_side is not None
            else Role.SERVER_SIDE
        )
        info, sessions = _read(paths, role, keep_streams=False)
        if single is not None:
            _check_rotation_set(info, sessions)
        start_of = {s.id: s.start_ts for s in sessions}
        findings = detect_single(sessions)
        return Analysis([info], sessions, [], [], number(findings, start_of), None)

    given_client, given_server = _as_paths(client_side), _as_paths(server_side)
    _check_distinct(given_client, given_server)
    # One key for both sides' credential digests, however often they are read; it lives
    # only while they are read (never on a session, in a pickle or in a report).
    key = CredentialKey()
    side = _read_sides(given_client, given_server, time_offset, key)
    orientation = judge_orientation(side.corroborated) if side.overlap.proven else None
    swapped = orientation is not None and orientation.swapped and not keep_orientation
    if swapped and not all(rereadable(os.fspath(p)) for p in given_client + given_server):
        raise UsageError(
            "the captures were given the wrong way round, and a stream too long to be kept "
            "cannot be read again: give them the other way round (or --keep-orientation)"
        )
    if swapped:
        side = _read_sides(
            given_server, given_client, None if time_offset is None else -time_offset, key
        )
    return _two_sided(side, time_offset is not None, orientation, swapped, keep_orientation)


@dataclass(slots=True)
class _Sides:
    """Both captures read, their sessions paired, and whether they overlap."""

    client_info: CaptureInfo
    server_info: CaptureInfo
    client: list[SmtpSession]
    server: list[SmtpSession]
    clock: ClockEstimate
    pairing: Pairing
    corroborated: tuple[SessionPair, ...]
    overlap: Overlap


def _read_sides(
    client_paths: list[PathLike],
    server_paths: list[PathLike],
    time_offset: float | None,
    key: CredentialKey,
) -> _Sides:
    client_info, client = _read(client_paths, Role.CLIENT_SIDE, True, key)
    server_info, server = _read(server_paths, Role.SERVER_SIDE, True, key)
    if same_traffic(client, server):
        raise UsageError(
            f"{_names(client_paths)} and {_names(server_paths)} hold the same packets: give "
            "the capture of the other side of the firewall for one of them"
        )
    if time_offset is not None:
        clock = ClockEstimate(time_offset, "given", 0)
    else:
        clock = estimate_offset(client, server)
    pairing = pair_sessions(client, server, clock)
    corroborated = corroborated_pairs(pairing.pairs)
    overlap = judge_overlap(
        client,
        server,
        pairing.pairs,
        clock,
        _span(client_info, 0.0),
        _span(server_info, 0.0),
        corroborated,
    )
    return _Sides(client_info, server_info, client, server, clock, pairing, corroborated, overlap)


def _two_sided(
    side: _Sides,
    clock_given: bool,
    orientation: Orientation | None,
    swapped: bool,
    keep_orientation: bool,
) -> Analysis:
    client_info, server_info, clock, pairing = (
        side.client_info,
        side.server_info,
        side.clock,
        side.pairing,
    )
    all_sessions = side.client + side.server
    start_of = {s.id: s.start_ts for s in all_sessions}
    found: list[Finding] = []
    alignments: list[PairAlignment] = []
    if side.overlap.kind is not OverlapKind.NO_OVERLAP:
        # Captures that share no connection prove nothing together: no finding is made from
        # them (each one alone is a one-capture analysis, which says what it is).
        spans = CaptureSpans(_span(client_info, 0.0), _span(server_info, 0.0), clock.offset_s)
        alignments = [align_pair(pair, spans) for pair in pairing.pairs]
        for alignment in alignments:
            found.extend(detect_pair(alignment))
        found.extend(
            unmatched(pairing.client_only, "server-side", _span(server_info, -clock.offset_s))
        )
        found.extend(
            unmatched(pairing.server_only, "client-side", _span(client_info, clock.offset_s))
        )
        found.extend(detect_single(list(pairing.client_only) + list(pairing.server_only)))
    if side.overlap.kind is OverlapKind.UNPROVEN_OVERLAP:
        found = [_unconfirmed(f) for f in found]
    # the look-alike pairs of captures that do not overlap are no one's peers
    pairs = [] if side.overlap.kind is OverlapKind.NO_OVERLAP else list(pairing.pairs)
    return Analysis(
        [client_info, server_info],
        all_sessions,
        pairs,
        alignments,
        number(found, start_of),
        clock,
        clock_given=clock_given,
        overlap=side.overlap,
        orientation=orientation,
        sides_swapped=swapped,
        keep_orientation=keep_orientation,
    )


def _unconfirmed(finding: Finding) -> Finding:
    """A finding of captures whose overlap is not proven: at most `likely`."""
    if finding.confidence is not Confidence.CONFIRMED:
        return finding
    details = dict(finding.details)
    details["confidence_capped"] = "unproven_overlap"
    return replace(
        finding,
        confidence=Confidence.LIKELY,
        details=details,
        confidence_note=finding.confidence_note
        or "the two captures are not shown to hold the same connections: no session pair is "
        "corroborated",
    )


def _names(paths: Sequence[PathLike]) -> str:
    return ", ".join(os.fspath(p) for p in paths)


FINGERPRINT_BYTES: Final = 1 << 20
"""Bytes hashed (with the size) to tell whether two files are copies of one capture."""


def _fingerprint(path: PathLike) -> tuple[int, bytes] | None:
    if is_stream(os.fspath(path)):
        return None  # read once, by the capture reader
    try:
        with open(path, "rb") as handle:
            head = handle.read(FINGERPRINT_BYTES)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return None  # reading it will say what is wrong with it
    return size, hashlib.sha256(head).digest()


def _check_distinct(client_paths: list[PathLike], server_paths: list[PathLike]) -> None:
    """The two sides are different captures: not one file, nor copies of one file."""
    for c in client_paths:
        for s in server_paths:
            same = os.path.abspath(c) == os.path.abspath(s)
            known = identity(os.fspath(c))
            same = same or (known is not None and known == identity(os.fspath(s)))
            if not same:
                fc, fs = _fingerprint(c), _fingerprint(s)
                same = fc is not None and fc == fs
            if same:
                raise UsageError(
                    f"{os.fspath(c)} and {os.fspath(s)} are the same capture, given for both "
                    "the client side and the server side: give the capture of the other side "
                    "of the firewall for one of them"
                )


ROTATION_TOLERANCE_S: Final = 1.0
"""How far a file of a rotation set may start before the previous one ended: one capture
process writes its files one after the other, so only timestamps reordered by the kernel
overlap (milliseconds)."""


def _check_rotation_set(info: CaptureInfo, sessions: Sequence[SmtpSession]) -> None:
    """Several files given as one capture must be one rotation set: each starts after the
    previous one ends, all have the same link types and snapshot length, no connection opens
    in two of them, and files that both carry SMTP share an address (one capture point)."""
    files = [f for f in info.files if f.packets]
    if len(files) < 2:
        return
    problem = ""
    opened: dict[tuple[int, str], int] = {}
    addresses: dict[int, set[str]] = defaultdict(set)
    for session in sessions:
        frame = session.flow.syn_frame
        file_no = frame.file_no if frame is not None else _file_of(session)
        addresses[file_no].update((session.flow.client.ip, session.flow.server.ip))
        if session.flow.handshake_seen and session.flow.client_tsval is not None:
            key = (session.flow.client_tsval, session.helo or "")
            if opened.setdefault(key, file_no) != file_no:
                problem = "the same connections appear in two of them"
    numbered = list(enumerate(info.files))
    for (prev_no, prev), (file_no, cur) in itertools.pairwise(numbered):
        if not prev.packets or not cur.packets:
            continue
        if prev.link_types != cur.link_types or prev.snaplen != cur.snaplen:
            problem = problem or "they were not captured on the same kind of interface"
        elif (
            prev.last_ts is not None
            and cur.first_ts is not None
            and cur.first_ts < prev.last_ts - ROTATION_TOLERANCE_S
        ):
            problem = problem or "they were captured at the same time"
        elif (
            addresses[prev_no]
            and addresses[file_no]
            and not addresses[prev_no] & addresses[file_no]
        ):
            problem = problem or "they share no address (two capture points)"
    if problem:
        raise UsageError(
            f"{_names(info.paths)} are not one rotation set ({problem}); to compare the two "
            "sides of a firewall, give them as --client-side FILE --server-side FILE"
        )


def _file_of(session: SmtpSession) -> int:
    frame = next((line.frame for line in session.lines if line.frame is not None), None)
    return frame.file_no if frame is not None else 0


def _span(info: CaptureInfo, shift: float) -> tuple[float, float] | None:
    """A capture's time span moved onto the other capture's clock."""
    if info.first_ts is None or info.last_ts is None:
        return None
    return info.first_ts + shift, info.last_ts + shift
