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
    streams: StreamPair | None = field(default=None, compare=False, repr=False)
    """Both reassembled directions, when the analysis asked to keep them (two-sided comparison)."""

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
