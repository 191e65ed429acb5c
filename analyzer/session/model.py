"""SMTP sessions as users see them: connection state (`SmtpSession`), envelopes (`MailTransaction`).

Values only, decoded to text (`surrogateescape`, so no captured byte is lost). Built by
`session.builder` from the SMTP observer's events; nothing here parses bytes or sees packets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from analyzer._common import Anomaly, Direction, FrameRef
from analyzer.flows.events import FlowInfo, FlowStats, StreamEnd
from analyzer.flows.record import StreamPair
from analyzer.smtp.secrets import CredentialDigest


class EndReason(enum.StrEnum):
    """How a session ended, as report.json spells it."""

    QUIT = "quit"
    """The server answered QUIT (221) or the client quit and the connection closed."""
    FIN = "fin"
    """The connection closed with FIN without a QUIT exchange."""
    RST = "rst"
    GAP = "gap"
    """The capture lost bytes and the session never resynchronised before it ended."""
    EOF = "eof"
    """The capture ended while the session was still open."""


@dataclass(frozen=True, slots=True)
class Line:
    """One command or reply as it crossed the wire, for transcripts and tables."""

    direction: Direction
    text: str
    """The line(s) without terminators; AUTH secrets never appear here."""
    offset: int
    frame: FrameRef | None
    ts: float
    code: int | None = None
    """Reply code for server lines."""
    verb: str | None = None
    """Command verb for client lines."""
    answers: int | None = None
    """For a reply: index (in `SmtpSession.lines`) of the command it answers."""


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field of a message, where it crossed and how long its longest line was."""

    name: str
    value: str
    offset: int
    longest_line: int
    frame: FrameRef | None
    last_frame: FrameRef | None
    ts: float
    complete: bool = True
    """False when the stream broke inside the field (its last line never ended)."""

    @property
    def is_signature(self) -> bool:
        return self.name.lower() in SIGNATURE_HEADERS


SIGNATURE_HEADERS = frozenset({"dkim-signature", "domainkey-signature"})
"""RFC 6376 §3.5 and RFC 4870 §3.3: the signature headers old PIX releases choked on."""


@dataclass(frozen=True, slots=True)
class StartTls:
    """What happened to STARTTLS in one session."""

    advertised: bool
    """The EHLO reply listed STARTTLS."""
    attempted: bool
    """The client sent STARTTLS (a masked `XXXXXXXX` in its place does not count here)."""
    reply_code: int | None
    established: bool
    """The server answered 220 and the client's next bytes were TLS."""
    command_frame: FrameRef | None = None
    reply_frame: FrameRef | None = None
    reply_text: str | None = None


@dataclass(frozen=True, slots=True)
class MailTransaction:
    """One envelope: MAIL FROM, its recipients and the message, if any."""

    index: int
    mail_from: str | None
    mail_params: tuple[tuple[str, str | None], ...]
    rcpt_to: tuple[str, ...]
    """Recipients the client named (accepted or not)."""
    accepted_rcpt_to: tuple[str, ...]
    start_ts: float
    frame: FrameRef | None
    data_started: bool = False
    complete: bool = False
    """The end-of-data mark (or BDAT LAST) was seen."""
    size: int | None = None
    reply_code: int | None = None
    """The server's reply to the end of the message (250 = accepted)."""
    reply_text: str | None = None
    headers: tuple[HeaderField, ...] = ()
    subject: str | None = None
    header_from: str | None = None
    header_to: str | None = None
    message_id: str | None = None
    date: str | None = None
    data_offset: int | None = None
    """Client→server stream offset where the message began."""
    end_ts: float | None = None

    @property
    def dkim_signed(self) -> bool:
        # `is_signature` inlined: asked of every transaction that is exported.
        return any(header.name.lower() in SIGNATURE_HEADERS for header in self.headers)

    @property
    def signatures(self) -> tuple[HeaderField, ...]:
        return tuple(h for h in self.headers if h.is_signature)


@dataclass(frozen=True, slots=True)
class Dropped:
    """What the bounds on memory left out of one session, counted exactly (all zero: nothing).

    Each count names what was not kept and the bound it hit (`session.builder` for the model's
    caps, `smtp.limits` for the observer's); `anomaly_reports` holds (kind, count) pairs in
    kind order."""

    lines: int = 0
    """Commands and replies not kept in `SmtpSession.lines` (`MAX_LINES_KEPT` per session)."""
    transactions: int = 0
    """Transactions not kept (`MAX_TRANSACTIONS_KEPT` per session)."""
    header_fields: int = 0
    """Header fields not kept, all messages together (`MAX_HEADERS_KEPT` per message)."""
    recipients: int = 0
    """RCPT paths not kept, all transactions together (`MAX_RECIPIENTS_KEPT` per transaction)."""
    accepted_recipients: int = 0
    """Accepted RCPT paths not kept (`MAX_RECIPIENTS_KEPT` per transaction)."""
    anomalies: int = 0
    """Anomalies not kept in `SmtpSession.anomalies` (`MAX_ANOMALIES_KEPT` per session)."""
    anomaly_reports: tuple[tuple[str, int], ...] = ()
    """Anomalies the observer only counted, by kind (`ANOMALY_REPORT_LIMIT` per kind and
    direction)."""
    line_bytes: int = 0
    """Bytes of over-long command and reply lines skipped (`DEFAULT_MAX_LINE` kept per line)."""
    reply_lines: int = 0
    """Lines of over-long multiline replies not kept (`DEFAULT_MAX_LINE` kept per reply)."""
    pending_commands: int = 0
    """Commands forgotten while waiting for a reply (`MAX_PENDING_COMMANDS` waiting)."""
    header_bytes: int = 0
    """Bytes of over-long message header lines not kept (`DEFAULT_MAX_LINE` kept per line)."""
    header_sections: int = 0
    """Messages whose header section outgrew `DEFAULT_MAX_HEADER_BLOCK`: its fields past the
    bound were read as body."""

    def __bool__(self) -> bool:
        return self != NOTHING_DROPPED


NOTHING_DROPPED = Dropped()


@dataclass(frozen=True, slots=True)
class SmtpSession:
    """One SMTP conversation over one TCP connection in one capture."""

    id: str
    """Deterministic: `<capture id>#<tcp.stream index>`."""
    capture_id: str
    flow: FlowInfo
    start_ts: float
    end_ts: float
    banner: str | None
    banner_code: int | None
    banner_frame: FrameRef | None
    helo_verb: str | None
    """'EHLO' or 'HELO' (the first one sent)."""
    helo: str | None
    ehlo_keywords: tuple[str, ...]
    """Keywords of the (first, cleartext) EHLO reply, upper-cased, parameters dropped."""
    ehlo_lines: tuple[str, ...]
    """The EHLO reply lines as sent (keyword and parameters)."""
    starttls: StartTls
    transactions: tuple[MailTransaction, ...]
    end_reason: EndReason
    lines: tuple[Line, ...]
    """Every command and reply in wire order (message bodies and TLS excluded)."""
    anomalies: tuple[Anomaly, ...]
    stats: FlowStats
    ends: tuple[StreamEnd, ...]
    """FIN/RST segments of both directions, in capture order."""
    auth_mechanism: str | None = None
    tls_bytes: tuple[int, int] = (0, 0)
    """Bytes after TLS started: (client→server, server→client)."""
    gaps: int = 0
    dropped: Dropped = NOTHING_DROPPED
    """What the bounds on memory left out of this session (false when nothing)."""
    streams: StreamPair | None = field(default=None, compare=False, repr=False)
    """Both reassembled directions, when the analysis asked to keep them (two-sided comparison)."""
    credentials: tuple[CredentialDigest, ...] = field(default=(), compare=False, repr=False)
    """Keyed digests of the AUTH credentials in `streams` (blanked there), in stream order:
    kept with the streams, to tell whether the other capture's credentials are the same."""

    @property
    def client(self) -> str:
        return str(self.flow.client)

    @property
    def server(self) -> str:
        return str(self.flow.server)

    @property
    def duration(self) -> float:
        return self.end_ts - self.start_ts

    @property
    def anomaly_kinds(self) -> tuple[str, ...]:
        """Distinct anomaly kinds in first-seen order."""
        return tuple(dict.fromkeys(str(a.kind) for a in self.anomalies))
