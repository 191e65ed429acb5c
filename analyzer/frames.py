"""Analyses as pandas DataFrames, for notebooks: the only module of smtpfw that imports pandas.

What it does: turns sessions (`read_sessions`) or an `Analysis` (`analyze`) into tables —
`sessions`, `transactions`, `commands`, `findings`, `evidence`, `streams`, `pairs` and
`server_summary` — each with an explicit dtype map declared once below (`TABLES`, one line of
documentation per column; `schema(name)` shows it as a DataFrame), plus the summaries people
would otherwise write: findings per time bin, a timeline of sessions coloured by outcome,
STARTTLS per server. Every table but `server_summary` (one row per server host) has a
`session` column holding the session id (`client#3`), so they join on it; times are UTC timestamps
with microsecond precision (they travel through the pipeline as float seconds). An empty input
gives empty tables with the same columns and dtypes.

What it does not do: read captures or decide anything (a list of sessions gets the one-sided
detectors, exactly as `analyze` runs them on a single capture), or import matplotlib before a
plot is asked for. `import analyzer` does not import this module: use `from analyzer import frames`.

Why one long module: it is the only pandas boundary, one builder per table sharing the dtype
map.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from analyzer._common import CaptureSide, Direction, FrameRef
from analyzer.detect import Confidence, Finding, FindingKind, Severity, detect_single, number
from analyzer.flows.events import DirectionStats, EndKind
from analyzer.result import Analysis
from analyzer.session.model import EndReason, Line, MailTransaction, SmtpSession

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Source: TypeAlias = Analysis | Iterable[SmtpSession]
"""What every function here accepts: an `Analysis`, or the sessions of one capture."""

# -- dtypes -----------------------------------------------------------------------------------

Dtype: TypeAlias = (
    pd.StringDtype
    | pd.Int64Dtype
    | pd.Float64Dtype
    | pd.BooleanDtype
    | pd.DatetimeTZDtype
    | pd.CategoricalDtype
)

STRING = pd.StringDtype()
INT = pd.Int64Dtype()
FLOAT = pd.Float64Dtype()
BOOL = pd.BooleanDtype()
TIME = pd.DatetimeTZDtype(unit="ns", tz="UTC")
TIME_UNIT = "us"
"""Times are rounded to microseconds: a float of epoch seconds holds no finer digit."""


def _closed(values: Iterable[str], *, ordered: bool = False) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(values), ordered=ordered)


OUTCOMES = ("delivered", "tls", "failed", "reset", "no_mail")
"""How a session went, as `sessions_timeline` colours it."""

DIRECTION = _closed(d.value for d in Direction)
FINDING_KIND = _closed(k.value for k in FindingKind)
SEVERITY = _closed(reversed([s.value for s in Severity]), ordered=True)
"""Ordered from `info` up to `critical`: `df.severity >= "high"` and `.max()` work."""
CONFIDENCE = _closed(
    [Confidence.POSSIBLE.value, Confidence.LIKELY.value, Confidence.CONFIRMED.value], ordered=True
)
END_REASON = _closed(r.value for r in EndReason)
TCP_END = _closed(k.value for k in EndKind)
LINE_KIND = _closed(("command", "reply"))
OUTCOME = _closed(OUTCOMES)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: Dtype
    doc: str


@dataclass(frozen=True, slots=True)
class Table:
    """One DataFrame's columns, in order, with their dtypes and meanings."""

    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def dtypes(self) -> dict[str, Dtype]:
        return {c.name: c.dtype for c in self.columns}

    def frame(self, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
        """A DataFrame of `rows` (dicts keyed by column name), every column cast to its dtype."""
        data: dict[str, Any] = {}
        for column in self.columns:
            values = [row.get(column.name) for row in rows]
            data[column.name] = _cast(values, column.dtype)
        return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _cast(values: list[Any], dtype: Dtype) -> Any:
    if isinstance(dtype, pd.DatetimeTZDtype):
        floats = [float("nan") if v is None else float(v) for v in values]
        stamps = pd.to_datetime(pd.Series(floats, dtype="float64"), unit="s", utc=True)
        return stamps.dt.as_unit("ns").dt.round(TIME_UNIT).astype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Categorical([None if v is None else str(v) for v in values], dtype=dtype)
    return pd.array(values, dtype=dtype)


_SESSION = Column("session", STRING, "Session id, `<capture>#<tcp.stream>` (`client#3`).")
_CAPTURE = Column("capture", STRING, "Capture id: `client`, `server` or `single`.")
_FRAME = Column("frame", INT, "Frame number as Wireshark shows it (1-based, within `file`).")
_FILE = Column("file", INT, "File of a rotation set (0-based, in time order) holding `frame`.")


def _direction_columns(metric: str, dtype: Dtype, doc: str) -> tuple[Column, Column]:
    return (
        Column(f"{metric}_c2s", dtype, f"{doc} (client to server)."),
        Column(f"{metric}_s2c", dtype, f"{doc} (server to client)."),
    )


SESSIONS = Table(
    "sessions",
    "One row per SMTP session (one TCP connection in one capture).",
    (
        _SESSION,
        _CAPTURE,
        Column("peer", STRING, "The same connection's session in the other capture, if paired."),
        Column("tcp_stream", INT, "Wireshark's `tcp.stream` number (`tcp.stream eq N`)."),
        Column("client", STRING, "Client address and port as this capture shows it."),
        Column("client_host", STRING, "Client address without the port."),
        Column("client_port", INT, "Client port."),
        Column("server", STRING, "Server address and port as this capture shows it."),
        Column("server_host", STRING, "Server address without the port."),
        Column("server_port", INT, "Server port."),
        Column("start", TIME, "First packet of the connection (UTC)."),
        Column("end", TIME, "Last packet of the connection (UTC)."),
        Column("duration_s", FLOAT, "`end - start` in seconds."),
        Column("banner", STRING, "The 220 greeting as received (all lines)."),
        Column("banner_code", INT, "Reply code of the greeting."),
        Column("helo_verb", STRING, "`EHLO` or `HELO` (the first one sent)."),
        Column("helo", STRING, "The name the client gave in EHLO/HELO."),
        Column("ehlo_keywords", STRING, "Keywords of the first EHLO reply, space-separated."),
        Column("starttls_advertised", BOOL, "STARTTLS was listed in the EHLO reply as received."),
        Column("starttls_attempted", BOOL, "The client sent STARTTLS."),
        Column("starttls_reply_code", INT, "The server's reply to STARTTLS."),
        Column("starttls_established", BOOL, "TLS started (the mail, if any, went encrypted)."),
        Column("auth_mechanism", STRING, "SASL mechanism of AUTH, if any (never the secret)."),
        Column("transactions", INT, "Envelopes (MAIL FROM) seen in cleartext."),
        Column("messages", INT, "Transactions that got as far as sending message data."),
        Column("delivered", INT, "Messages the server accepted (2xx after the data)."),
        Column("end_reason", END_REASON, "How the session ended: quit, fin, rst, gap, eof."),
        Column(
            "outcome",
            OUTCOME,
            "tls (TLS started), delivered (a message accepted in cleartext), reset (ended by a "
            "RST, nothing delivered), failed (mail attempted and none accepted, or STARTTLS "
            "refused), no_mail (no MAIL FROM: a probe).",
        ),
        Column("gaps", INT, "Stream gaps (bytes the capture lost)."),
        Column("anomalies", INT, "Anomalies observed in this session."),
        Column("anomaly_kinds", STRING, "Distinct anomaly kinds, comma-separated."),
    ),
)

TRANSACTIONS = Table(
    "transactions",
    "One row per mail transaction (MAIL FROM … end of data) seen in cleartext.",
    (
        _SESSION,
        _CAPTURE,
        Column("transaction", INT, "0-based index of the transaction in its session."),
        Column("start", TIME, "When MAIL FROM was sent (UTC)."),
        Column("end", TIME, "When the reply to the end of data came, if it did (UTC)."),
        Column("mail_from", STRING, "Envelope sender (reverse-path)."),
        Column("rcpt_to", STRING, "Recipients the client named, comma-separated."),
        Column("recipients", INT, "How many recipients the client named."),
        Column("accepted", INT, "How many recipients the server accepted."),
        Column("data_started", BOOL, "The server said 354 (or BDAT began)."),
        Column("complete", BOOL, "The end-of-data mark (or BDAT LAST) was seen."),
        Column("size", INT, "Message size in bytes, as sent."),
        Column("reply_code", INT, "The server's reply to the end of the message."),
        Column("reply_text", STRING, "That reply's text."),
        Column("delivered", BOOL, "Complete and answered 2xx."),
        Column("message_id", STRING, "Message-ID header: the same on every retry of a message."),
        Column("subject", STRING, "Subject header."),
        Column("header_from", STRING, "From header."),
        Column("header_to", STRING, "To header."),
        Column("date", STRING, "Date header, as written."),
        Column("dkim_signed", BOOL, "A DKIM-Signature or DomainKey-Signature header is present."),
        Column("headers", INT, "Header fields seen."),
        Column("longest_header_line", INT, "Longest physical header line, in bytes."),
        _FRAME,
        _FILE,
    ),
)

COMMANDS = Table(
    "commands",
    "One row per command and reply, in wire order (message bodies and TLS excluded).",
    (
        _SESSION,
        _CAPTURE,
        Column("line", INT, "0-based index of the command or reply in its session."),
        Column("kind", LINE_KIND, "`command` (client to server) or `reply`."),
        Column("direction", DIRECTION, "client_to_server or server_to_client."),
        Column("ts", TIME, "When it was captured (UTC)."),
        _FRAME,
        _FILE,
        Column("offset", INT, "Stream offset of its first byte in its direction."),
        Column("text", STRING, "The line(s) as sent, without terminators; AUTH secrets never."),
        Column("verb", STRING, "Command verb, upper-cased (commands only)."),
        Column("code", INT, "Reply code (replies only)."),
        Column("answers", INT, "For a reply: `line` of the command it answers."),
        Column("answered_by", INT, "For a command: `line` of the first reply that answers it."),
        Column("reply_code", INT, "For a command: the code of that reply."),
    ),
)

FINDINGS = Table(
    "findings",
    "One row per finding. A finding about a pair lists the client-side session in `session` "
    "and the server-side one in `peer`.",
    (
        Column("finding", STRING, "Finding id (`F1`, … in report order)."),
        Column("kind", FINDING_KIND, "What happened (DOMAIN.md §3 vocabulary)."),
        Column("severity", SEVERITY, "info < low < medium < high < critical."),
        Column("confidence", CONFIDENCE, "possible < likely (one side) < confirmed (both)."),
        _SESSION,
        Column("peer", STRING, "The other session the finding names (server-side copy)."),
        Column("sessions", STRING, "Every session the finding names, comma-separated."),
        Column("ts", TIME, "Earliest evidence (UTC, on the client-side capture's clock)."),
        Column("summary", STRING, "One sentence saying what happened."),
        Column("cause", STRING, "What causes it."),
        Column("remediation", STRING, "What fixes it."),
        Column("evidence", INT, "Evidence items (rows in the evidence table)."),
        Column("details", STRING, "Kind-specific facts as JSON (masked keyword, header, …)."),
    ),
)

EVIDENCE = Table(
    "evidence",
    "One row per packet a finding cites.",
    (
        Column("finding", STRING, "Finding id."),
        Column("kind", FINDING_KIND, "The finding's kind."),
        Column("item", INT, "0-based index of this item within the finding."),
        _SESSION,
        _CAPTURE,
        _FRAME,
        _FILE,
        Column("ts", TIME, "When the packet was captured (UTC, on its own capture's clock)."),
        Column("direction", DIRECTION, "Which way the bytes travelled."),
        Column("excerpt", STRING, "The bytes, decoded as captured."),
        Column("note", STRING, "What this packet shows ('as the server sent it', …)."),
    ),
)

_STREAM_METRICS: tuple[tuple[str, Dtype, str], ...] = (
    ("packets", INT, "Packets"),
    ("payload_packets", INT, "Packets carrying payload"),
    ("bytes", INT, "Stream bytes delivered, gaps excluded"),
    ("retransmissions", INT, "Retransmitted segments"),
    ("retransmitted_bytes", INT, "Retransmitted bytes"),
    ("out_of_order", INT, "Segments that arrived out of order"),
    ("gaps", INT, "Holes the capture never filled"),
    ("gap_bytes", INT, "Bytes in those holes"),
    ("conflicts", INT, "Overlaps whose bytes differ (rewriting in the path)"),
    ("tls_bytes", INT, "Bytes after TLS started"),
    ("end", TCP_END, "How this direction ended: fin or rst"),
    ("end_ttl", INT, "TTL of that FIN/RST"),
    ("usual_ttl", INT, "The sender's usual TTL (a forged RST differs)"),
    ("end_frame", INT, "Frame of that FIN/RST"),
)

STREAMS = Table(
    "streams",
    "One row per SMTP flow: TCP counters of each direction.",
    (
        _SESSION,
        _CAPTURE,
        Column("tcp_stream", INT, "Wireshark's `tcp.stream` number."),
        Column("client", STRING, "Client address and port."),
        Column("server", STRING, "Server address and port."),
        Column("start", TIME, "First packet (UTC)."),
        Column("end", TIME, "Last packet (UTC)."),
        Column("handshake_seen", BOOL, "The SYN was captured (roles are certain)."),
        Column("mss_client", INT, "MSS option of the client's SYN."),
        Column("mss_server", INT, "MSS option of the server's SYN-ACK."),
        Column("end_reason", END_REASON, "How the session ended."),
        Column("evicted", BOOL, "The flow table closed the flow early (full or idle)."),
        *(c for m in _STREAM_METRICS for c in _direction_columns(*m)),
    ),
)

PAIRS = Table(
    "pairs",
    "One row per connection seen in both captures (two-sided analyses only): how it was "
    "paired and what differs.",
    (
        Column("session", STRING, "The client-side session."),
        Column("peer", STRING, "The server-side session."),
        Column("score", FLOAT, "Pairing score (higher is surer)."),
        Column("matched_on", STRING, "What matched: TCP timestamps, lengths, EHLO name, …"),
        Column("time_delta_s", FLOAT, "Start difference left after the clock offset (s)."),
        Column("clock_offset_s", FLOAT, "Server-side clock minus client-side clock (s)."),
        Column("identical", BOOL, "Both directions are byte-identical."),
        Column("divergences", INT, "Places where the streams differ."),
        Column("end_mismatches", INT, "FIN/RST seen on one side only (or forged)."),
        *_direction_columns("length_client_side", INT, "Stream length in the client-side capture"),
        *_direction_columns("length_server_side", INT, "Stream length in the server-side capture"),
    ),
)

SERVER_SUMMARY = Table(
    "server_summary",
    "One row per server host: which servers' STARTTLS is masked, and since when. Each "
    "connection counts once (its client-side copy when paired).",
    (
        Column("server_host", STRING, "Server address as the client addressed it."),
        Column("sessions", INT, "Connections to it."),
        Column("messages", INT, "Messages sent in cleartext (TLS hides the rest)."),
        Column("delivered", INT, "Of those, accepted by the server."),
        Column("starttls_offered", INT, "Connections where the server offered STARTTLS."),
        Column("starttls_used", INT, "Connections that ran TLS."),
        Column("starttls_masked", INT, "Connections where STARTTLS was masked or removed."),
        Column("first_session", TIME, "First connection (UTC)."),
        Column("last_session", TIME, "Last connection (UTC)."),
        Column("first_masked", TIME, "First time STARTTLS was masked (UTC)."),
        Column("last_masked", TIME, "Last time STARTTLS was masked (UTC)."),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (SESSIONS, TRANSACTIONS, COMMANDS, FINDINGS, EVIDENCE, STREAMS, PAIRS, SERVER_SUMMARY)
}
"""Every table this module makes, by name."""


def schema(name: str) -> pd.DataFrame:
    """A table's columns: name, dtype and meaning (`frames.schema("sessions")`)."""
    table = TABLES[name]
    return pd.DataFrame(
        {
            "column": [c.name for c in table.columns],
            "dtype": [str(c.dtype) for c in table.columns],
            "meaning": [c.doc for c in table.columns],
        }
    )


# -- inputs -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Input:
    """Sessions, findings and pairing of what the caller passed."""

    sessions: list[SmtpSession]
    analysis: Analysis | None
    _findings: list[Finding] | None = None

    @property
    def findings(self) -> list[Finding]:
        if self._findings is None:
            if self.analysis is not None:
                self._findings = list(self.analysis.findings)
            else:
                start_of = {s.id: s.start_ts for s in self.sessions}
                self._findings = number(detect_single(self.sessions), start_of)
        return self._findings

    def peer(self, session_id: str) -> str | None:
        return self.analysis.peer_of(session_id) if self.analysis is not None else None

    @property
    def offset(self) -> float:
        """Server-side clock minus client-side clock (0 for one capture)."""
        clock = self.analysis.clock if self.analysis is not None else None
        return clock.offset_s if clock is not None else 0.0

    def server_side(self, capture_id: str) -> bool:
        if self.analysis is None:
            return False
        return any(
            c.id == capture_id and c.role == CaptureSide.SERVER_SIDE for c in self.analysis.captures
        )

    def connections(self) -> Iterator[tuple[SmtpSession, SmtpSession | None]]:
        """Each connection once: (client-side or only copy, server-side copy or None)."""
        by_id = {s.id: s for s in self.sessions}
        for s in self.sessions:
            peer_id = self.peer(s.id)
            if self.server_side(s.capture_id):
                if peer_id is None:
                    yield s, None
                continue
            yield s, by_id.get(peer_id) if peer_id is not None else None


def _input(x: Source) -> _Input:
    if isinstance(x, Analysis):
        return _Input(list(x.sessions), x)
    if isinstance(x, str | bytes) or not isinstance(x, Iterable):
        raise TypeError("expected an Analysis or a list of SmtpSession")
    sessions = list(x)
    for s in sessions:
        if not isinstance(s, SmtpSession):
            raise TypeError(f"expected SmtpSession items, got {type(s).__name__}")
    return _Input(sessions, None)


# -- tables -----------------------------------------------------------------------------------


def _host(endpoint: str) -> str:
    host = endpoint.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _delivered(txn: MailTransaction) -> bool:
    return txn.complete and txn.reply_code is not None and 200 <= txn.reply_code < 300


def _is_message(txn: MailTransaction) -> bool:
    return txn.data_started or txn.size is not None or txn.complete


def outcome(session: SmtpSession) -> str:
    """How a session went: one of `OUTCOMES` (see the `outcome` column)."""
    if session.starttls.established:
        return "tls"
    if any(_delivered(t) for t in session.transactions):
        return "delivered"
    if session.end_reason is EndReason.RST:
        return "reset"
    if session.transactions or (session.starttls.attempted and not session.starttls.established):
        return "failed"
    return "no_mail"


def _frame(ref: FrameRef | None) -> tuple[int | None, int | None]:
    return (ref.frame_no, ref.file_no) if ref is not None else (None, None)


def _session_row(s: SmtpSession, peer: str | None) -> dict[str, Any]:
    starttls = s.starttls
    return {
        "session": s.id,
        "capture": s.capture_id,
        "peer": peer,
        "tcp_stream": s.flow.index,
        "client": s.client,
        "client_host": _host(s.client),
        "client_port": s.flow.client.port,
        "server": s.server,
        "server_host": _host(s.server),
        "server_port": s.flow.server.port,
        "start": s.start_ts,
        "end": s.end_ts,
        "duration_s": s.duration,
        "banner": s.banner,
        "banner_code": s.banner_code,
        "helo_verb": s.helo_verb,
        "helo": s.helo,
        "ehlo_keywords": " ".join(s.ehlo_keywords),
        "starttls_advertised": starttls.advertised,
        "starttls_attempted": starttls.attempted,
        "starttls_reply_code": starttls.reply_code,
        "starttls_established": starttls.established,
        "auth_mechanism": s.auth_mechanism,
        "transactions": len(s.transactions),
        "messages": sum(_is_message(t) for t in s.transactions),
        "delivered": sum(_delivered(t) for t in s.transactions),
        "end_reason": s.end_reason.value,
        "outcome": outcome(s),
        "gaps": s.gaps,
        "anomalies": len(s.anomalies),
        "anomaly_kinds": ", ".join(s.anomaly_kinds),
    }


def sessions(x: Source) -> pd.DataFrame:
    """One row per session (see `SESSIONS` / `schema("sessions")`)."""
    data = _input(x)
    return SESSIONS.frame([_session_row(s, data.peer(s.id)) for s in data.sessions])


def transactions(x: Source) -> pd.DataFrame:
    """One row per mail transaction seen in cleartext (see `schema("transactions")`)."""
    rows = []
    for s in _input(x).sessions:
        for i, t in enumerate(s.transactions):
            frame, file_no = _frame(t.frame)
            rows.append(
                {
                    "session": s.id,
                    "capture": s.capture_id,
                    "transaction": i,
                    "start": t.start_ts,
                    "end": t.end_ts,
                    "mail_from": t.mail_from,
                    "rcpt_to": ", ".join(t.rcpt_to),
                    "recipients": len(t.rcpt_to),
                    "accepted": len(t.accepted_rcpt_to),
                    "data_started": t.data_started,
                    "complete": t.complete,
                    "size": t.size,
                    "reply_code": t.reply_code,
                    "reply_text": t.reply_text,
                    "delivered": _delivered(t),
                    "message_id": t.message_id,
                    "subject": t.subject,
                    "header_from": t.header_from,
                    "header_to": t.header_to,
                    "date": t.date,
                    "dkim_signed": t.dkim_signed,
                    "headers": len(t.headers),
                    "longest_header_line": max((h.longest_line for h in t.headers), default=None),
                    "frame": frame,
                    "file": file_no,
                }
            )
    return TRANSACTIONS.frame(rows)


def _first_replies(lines: Sequence[Line]) -> dict[int, int]:
    first: dict[int, int] = {}
    for i, line in enumerate(lines):
        if line.answers is not None and line.answers not in first:
            first[line.answers] = i
    return first


def commands(x: Source) -> pd.DataFrame:
    """Every command and reply with its frame and the line it answers (see
    `schema("commands")`)."""
    rows = []
    for s in _input(x).sessions:
        first = _first_replies(s.lines)
        for i, line in enumerate(s.lines):
            frame, file_no = _frame(line.frame)
            is_command = line.direction is Direction.CLIENT_TO_SERVER
            reply = first.get(i) if is_command else None
            rows.append(
                {
                    "session": s.id,
                    "capture": s.capture_id,
                    "line": i,
                    "kind": "command" if is_command else "reply",
                    "direction": line.direction.value,
                    "ts": line.ts,
                    "frame": frame,
                    "file": file_no,
                    "offset": line.offset,
                    "text": line.text,
                    "verb": line.verb,
                    "code": line.code,
                    "answers": line.answers,
                    "answered_by": reply,
                    "reply_code": s.lines[reply].code if reply is not None else None,
                }
            )
    return COMMANDS.frame(rows)


def _finding_ts(f: Finding, data: _Input, start_of: dict[str, float]) -> float | None:
    times = [
        e.ts - data.offset if data.server_side(e.capture) else e.ts
        for e in f.evidence
        if e.ts is not None
    ]
    if times:
        return min(times)
    starts = [
        start_of[sid] - (data.offset if data.server_side(sid.split("#", 1)[0]) else 0.0)
        for sid in f.sessions
        if sid in start_of
    ]
    return min(starts, default=None)


def _details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)


def findings(x: Source) -> pd.DataFrame:
    """One row per finding (see `schema("findings")`). For a list of sessions the one-sided
    detectors run on them, as `analyze` does for one capture."""
    data = _input(x)
    start_of = {s.id: s.start_ts for s in data.sessions}
    rows = [
        {
            "finding": f.id,
            "kind": f.kind.value,
            "severity": f.severity.value,
            "confidence": f.confidence.value,
            "session": f.sessions[0] if f.sessions else None,
            "peer": f.sessions[1] if len(f.sessions) > 1 else None,
            "sessions": ", ".join(f.sessions),
            "ts": _finding_ts(f, data, start_of),
            "summary": f.summary,
            "cause": f.cause,
            "remediation": f.remediation,
            "evidence": len(f.evidence),
            "details": _details(f.details),
        }
        for f in data.findings
    ]
    return FINDINGS.frame(rows)


def evidence(x: Source) -> pd.DataFrame:
    """One row per packet a finding cites (see `schema("evidence")`); `session` is the
    finding's session in the capture the packet belongs to."""
    rows = []
    for f in _input(x).findings:
        for i, e in enumerate(f.evidence):
            frame, file_no = _frame(e.frame)
            in_capture = [sid for sid in f.sessions if sid.split("#", 1)[0] == e.capture]
            rows.append(
                {
                    "finding": f.id,
                    "kind": f.kind.value,
                    "item": i,
                    "session": in_capture[0] if in_capture else (f.sessions or (None,))[0],
                    "capture": e.capture,
                    "frame": frame,
                    "file": file_no,
                    "ts": e.ts,
                    "direction": e.direction.value if e.direction is not None else None,
                    "excerpt": e.excerpt,
                    "note": e.note,
                }
            )
    return EVIDENCE.frame(rows)


def _direction_row(stats: DirectionStats, tls_bytes: int, suffix: str) -> dict[str, Any]:
    end = stats.end
    values: dict[str, Any] = {
        "packets": stats.packets,
        "payload_packets": stats.payload_packets,
        "bytes": stats.bytes,
        "retransmissions": stats.retransmissions,
        "retransmitted_bytes": stats.retransmitted_bytes,
        "out_of_order": stats.out_of_order,
        "gaps": stats.gaps,
        "gap_bytes": stats.gap_bytes,
        "conflicts": stats.conflicts,
        "tls_bytes": tls_bytes,
        "end": end.kind.value if end is not None else None,
        "end_ttl": end.origin.ttl if end is not None else None,
        "usual_ttl": end.usual_origin.ttl if end and end.usual_origin else None,
        "end_frame": end.frame.frame_no if end is not None else None,
    }
    return {f"{name}_{suffix}": value for name, value in values.items()}


def streams(x: Source) -> pd.DataFrame:
    """One row per SMTP flow with both directions' TCP counters (see `schema("streams")`)."""
    rows = []
    for s in _input(x).sessions:
        row: dict[str, Any] = {
            "session": s.id,
            "capture": s.capture_id,
            "tcp_stream": s.flow.index,
            "client": s.client,
            "server": s.server,
            "start": s.start_ts,
            "end": s.end_ts,
            "handshake_seen": s.flow.handshake_seen,
            "mss_client": s.flow.mss[0],
            "mss_server": s.flow.mss[1],
            "end_reason": s.end_reason.value,
            "evicted": s.stats.evicted,
        }
        row.update(_direction_row(s.stats.client_to_server, s.tls_bytes[0], "c2s"))
        row.update(_direction_row(s.stats.server_to_client, s.tls_bytes[1], "s2c"))
        rows.append(row)
    return STREAMS.frame(rows)


def pairs(x: Source) -> pd.DataFrame:
    """One row per paired connection (see `schema("pairs")`); empty for one capture."""
    data = _input(x)
    rows = []
    alignments = data.analysis.alignments if data.analysis is not None else []
    for al in alignments:
        pair = al.pair
        # `lengths` holds (as sent, as received); as (client-side, server-side) copies:
        c2s = al.lengths.get(Direction.CLIENT_TO_SERVER, (None, None))
        server_sent, client_got = al.lengths.get(Direction.SERVER_TO_CLIENT, (None, None))
        s2c = (client_got, server_sent)
        rows.append(
            {
                "session": pair.client_side.id,
                "peer": pair.server_side.id,
                "score": pair.score,
                "matched_on": ", ".join(pair.matched_on),
                "time_delta_s": pair.time_delta_s,
                "clock_offset_s": data.offset,
                "identical": al.identical,
                "divergences": len(al.divergences),
                "end_mismatches": len(al.end_mismatches),
                "length_client_side_c2s": c2s[0],
                "length_client_side_s2c": s2c[0],
                "length_server_side_c2s": c2s[1],
                "length_server_side_s2c": s2c[1],
            }
        )
    return PAIRS.frame(rows)


# -- summaries --------------------------------------------------------------------------------

STARTTLS_DAMAGE = frozenset(
    {FindingKind.EHLO_KEYWORD_MASKED, FindingKind.EHLO_KEYWORD_REMOVED, FindingKind.COMMAND_MASKED}
)
"""Kinds that take STARTTLS away when their details name it (as the original keyword or
command, or, from one capture, as a candidate for a mask)."""


def _names(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value.upper()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _names(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _names(item)


def masks_starttls(finding: Finding) -> bool:
    """True when a finding says STARTTLS was masked or removed on the way (a downgrade, or a
    masked/removed keyword or command that is, or may be, STARTTLS)."""
    if finding.kind is FindingKind.TLS_DOWNGRADE:
        return True
    return finding.kind in STARTTLS_DAMAGE and "STARTTLS" in set(_names(finding.details))


def server_summary(x: Source) -> pd.DataFrame:
    """Per server host: sessions, messages, STARTTLS offered / used / masked, and the first and
    last time it was masked (see `schema("server_summary")`)."""
    data = _input(x)
    start_of = {s.id: s.start_ts for s in data.sessions}
    masked_at: dict[str, float] = {}
    for f in data.findings:
        if not masks_starttls(f):
            continue
        ts = _finding_ts(f, data, start_of)
        for sid in f.sessions:
            if ts is not None:
                masked_at[sid] = min(ts, masked_at.get(sid, ts))
    hosts: dict[str, dict[str, Any]] = {}
    for near, far in data.connections():
        copies = [near] if far is None else [near, far]
        when = [masked_at[c.id] for c in copies if c.id in masked_at]
        masked = bool(when)
        offered = masked or any(c.starttls.advertised for c in copies)
        used = any(c.starttls.established for c in copies)
        row = hosts.setdefault(
            _host(near.server),
            {
                "sessions": 0,
                "messages": 0,
                "delivered": 0,
                "starttls_offered": 0,
                "starttls_used": 0,
                "starttls_masked": 0,
                "starts": [],
                "masked": [],
            },
        )
        row["sessions"] += 1
        row["messages"] += sum(_is_message(t) for t in near.transactions)
        row["delivered"] += sum(_delivered(t) for t in near.transactions)
        row["starttls_offered"] += offered
        row["starttls_used"] += used
        row["starttls_masked"] += masked
        row["starts"].append(near.start_ts)
        row["masked"].extend(when)
    rows = [
        {
            "server_host": host,
            **{k: v for k, v in row.items() if k not in ("starts", "masked")},
            "first_session": min(row["starts"]),
            "last_session": max(row["starts"]),
            "first_masked": min(row["masked"], default=None),
            "last_masked": max(row["masked"], default=None),
        }
        for host, row in sorted(hosts.items())
    ]
    return SERVER_SUMMARY.frame(rows)


BY = {"kind": FINDING_KIND, "severity": SEVERITY, "confidence": CONFIDENCE}
"""What `findings_over_time` can count by."""


def findings_over_time(x: Source, freq: str = "1min", by: str = "kind") -> pd.DataFrame:
    """Findings per time bin: one row per bin of `freq` (a pandas offset alias) from the first
    session to the last, one Int64 column per `by` value found (kind, severity or confidence),
    zero where nothing happened, so quiet stretches show. The index holds each bin's start
    (UTC, client-side clock)."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    data = _input(x)
    found = findings(data.analysis if data.analysis is not None else data.sessions)
    starts = [
        s.start_ts - (data.offset if data.server_side(s.capture_id) else 0.0) for s in data.sessions
    ]
    ends = [
        s.end_ts - (data.offset if data.server_side(s.capture_id) else 0.0) for s in data.sessions
    ]
    bounds = _cast([min(starts, default=None), max(ends, default=None)], TIME)
    index_name = "bin"
    if not starts:
        empty = pd.DatetimeIndex([], dtype=TIME, name=index_name)
        return pd.DataFrame(index=empty)
    bins = pd.date_range(bounds[0].floor(freq), bounds[1].floor(freq), freq=freq, name=index_name)
    counts = found.dropna(subset=["ts"]).assign(bin=lambda d: d["ts"].dt.floor(freq))
    table = counts.groupby(["bin", by], observed=True).size().unstack(by, fill_value=0)
    table = table.reindex(bins, fill_value=0).fillna(0)
    ordered = [c for c in BY[by].categories if c in table.columns]
    table = table[ordered].astype(INT)
    table.columns = pd.Index([str(c) for c in ordered], name=by)
    return table


SEVERITY_COLOURS = {
    "critical": "#b3261e",
    "high": "#c4510a",
    "medium": "#9a6700",
    "low": "#2f6fbf",
    "info": "#59636e",
}
OUTCOME_COLOURS = {
    "delivered": "#1a7f37",
    "tls": "#0969da",
    "failed": "#d9822b",
    "reset": "#cf222e",
    "no_mail": "#8c959f",
}


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size)
    return new


def _date_num(ts: pd.Timestamp) -> float:
    """A UTC time in matplotlib's date units (days since its epoch)."""
    import matplotlib.dates as mdates

    get_epoch: Callable[[], str] = mdates.get_epoch
    epoch = pd.Timestamp(get_epoch(), tz="UTC")
    return float((ts - epoch) / pd.Timedelta(days=1))


def _time_axis(ax: Axes) -> None:
    """Label the x axis (matplotlib date units) with UTC times, as fine as the span needs."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import Formatter, Locator

    make_locator: Callable[..., Locator] = mdates.AutoDateLocator
    make_formatter: Callable[..., Formatter] = mdates.ConciseDateFormatter
    locator = make_locator(tz="UTC")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(make_formatter(locator, tz="UTC"))
    ax.set_xlabel("UTC")


def plot_findings_over_time(
    x: Source, freq: str = "1min", by: str = "kind", ax: Axes | None = None
) -> Axes:
    """`findings_over_time` as stacked bars, one colour per kind (or severity/confidence)."""
    table = findings_over_time(x, freq, by)
    ax = _axes(ax, (10, 3.5))
    if table.empty:
        ax.set_title("No sessions")
        return ax
    lefts = [_date_num(t) for t in table.index]
    width = float(pd.Timedelta(freq) / pd.Timedelta(days=1))
    bottom = [0] * len(table)
    for column in table.columns:
        heights = [int(v) for v in table[column]]
        colour = SEVERITY_COLOURS.get(str(column)) if by == "severity" else None
        ax.bar(
            lefts,
            heights,
            width=width,
            bottom=bottom,
            align="edge",
            label=str(column),
            color=colour,
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    _time_axis(ax)
    ax.set_ylabel(f"findings per {freq}")
    if len(table.columns):
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    return ax


MIN_BAR_SHARE = 0.004
"""Shortest bar drawn by `sessions_timeline`, as a share of the time span: a one-second
session in a capture of hours would otherwise be invisible."""


def sessions_timeline(x: Source, by: str | None = "server_host", ax: Axes | None = None) -> Axes:
    """A horizontal-bar timeline of the sessions coloured by outcome (delivered, tls, failed,
    reset, no_mail), one lane per value of the sessions column `by` (one per session when
    None). Paired sessions are drawn once, on the client-side clock."""
    from matplotlib.patches import Patch

    data = _input(x)
    shown = [near for near, _ in data.connections()]
    frame = sessions(shown)
    shift = [data.offset if data.server_side(s.capture_id) else 0.0 for s in shown]
    frame["start"] = frame["start"] - pd.to_timedelta(shift, unit="s")
    frame["end"] = frame["end"] - pd.to_timedelta(shift, unit="s")
    lane_of = frame[by].astype(str) if by else frame["session"].astype(str)
    lanes = list(dict.fromkeys(lane_of))
    ax = _axes(ax, (10, 1.2 + 0.35 * max(1, len(lanes))))
    if frame.empty:
        ax.set_title("No sessions")
        return ax
    span = (frame["end"].max() - frame["start"].min()).total_seconds()
    shortest = max(span * MIN_BAR_SHARE, 0.001) / 86400
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    lane_no = {lane: i for i, lane in enumerate(lanes)}
    for lane, start, end, how in zip(
        lane_of, frame["start"], frame["end"], frame["outcome"], strict=True
    ):
        left = _date_num(start)
        bars.setdefault((lane_no[lane], str(how)), []).append(
            (left, max(_date_num(end) - left, shortest))
        )
    for (row, how), spans in bars.items():
        ax.broken_barh(spans, (row - 0.4, 0.8), facecolors=OUTCOME_COLOURS[how])
    ax.set_yticks(range(len(lanes)), labels=lanes)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    _time_axis(ax)
    present = [o for o in OUTCOMES if (frame["outcome"] == o).any()]
    ax.legend(
        handles=[Patch(color=OUTCOME_COLOURS[o], label=o) for o in present],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize="small",
        frameon=False,
    )
    return ax


Builder: TypeAlias = Callable[[Source], pd.DataFrame]
BUILDERS: dict[str, Builder] = {
    "sessions": sessions,
    "transactions": transactions,
    "commands": commands,
    "findings": findings,
    "evidence": evidence,
    "streams": streams,
    "pairs": pairs,
    "server_summary": server_summary,
}
"""The function that makes each table of `TABLES`."""

__all__ = [
    "BUILDERS",
    "OUTCOMES",
    "TABLES",
    "Column",
    "Table",
    "commands",
    "evidence",
    "findings",
    "findings_over_time",
    "masks_starttls",
    "outcome",
    "pairs",
    "plot_findings_over_time",
    "schema",
    "server_summary",
    "sessions",
    "sessions_timeline",
    "streams",
    "transactions",
]
