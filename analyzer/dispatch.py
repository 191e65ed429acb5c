"""Hand each TCP flow of a capture to SMTP: which flows are SMTP, one observer per SMTP flow.

`SessionSink` is the flow table's sink. It decides which flows are SMTP (a mail port, or by
content on any port with `smtp.detect`'s sniff rule, also through an HTTP CONNECT tunnel), feeds
each SMTP flow's bytes to its own sans-IO observer and session builder, keeps the raw streams
of a two-sided analysis with their AUTH credentials digested and blanked, and hands on a
session as its connection closes. Connections that are not sessions are only counted
(`PipelineStats`): those without payload and those without one SMTP line, summarised in
`SilentConnections`.

It does not open captures, run the flow table or pair sessions: `pipeline` wires those.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Final

from analyzer._common import Anomaly, Direction
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
from analyzer.smtp.detect import (
    IMPLICIT_TLS_PORTS,
    MAIL_PORTS,
    SNIFF_BYTES,
    looks_like_tls_record,
    sniff_decision,
)
from analyzer.smtp.events import AnomalySeen, SmtpAnomaly
from analyzer.smtp.secrets import (
    CredentialDigest,
    CredentialKey,
    blank_secrets,
    digest_secrets,
)
from analyzer.tunnel import PreambleSkipper, is_connect_request

YOUNG_COLLECTION_THRESHOLD: Final = 1_000_000
"""Allocations between two collections of the youngest generation while a capture is read.

Reading allocates and frees a few short-lived objects per packet. At the default threshold
(700) the cyclic collector runs hundreds of times per gigabyte and traverses what happens to be
alive each time, about a tenth of the reading time; at 200,000 it still took 3% of the compiled
build's; at this many, almost nothing, since most of those objects die of their reference
counts first. Memory does not grow for it (the same peak on 250 MB and 1 GB captures): closed
flows break their own reference cycles, and the collector still runs."""


@contextmanager
def fewer_collections() -> Iterator[None]:
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


class SessionSink:
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
        decided = sniff_decision(seen, hit)
        if decided:
            state.smtp = True
        elif decided is not None:
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


def role_hint(first_bytes: bytes, sport: int, dport: int) -> bool | None:
    return sender_is_server(first_bytes, sport, dport)
