"""Fold the SMTP observer's events for one TCP connection into an `SmtpSession`.

Connection state (banner, EHLO, STARTTLS, how it ended) and envelope state (MAIL, RCPT, the
message) are kept apart, as in the model. This module decodes wire bytes to text; it does not
parse lines (the observer did) and never sees packets.

It runs once per command and reply of every session, so events are dispatched by type through
a table and transcript `Line`s are built without the frozen dataclass's per-field
`object.__setattr__` (`_new_line`).

Why one long module: one fold of every event kind into the session and transaction records, with
the caps that bound them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from analyzer._common import Anomaly, Direction, FrameRef
from analyzer._quick import quick_constructor
from analyzer.flows.events import EndKind, FlowInfo, FlowStats, StreamEnd
from analyzer.flows.record import StreamPair
from analyzer.smtp import parse_ehlo_keywords, parse_path
from analyzer.smtp.events import (
    AnomalySeen,
    BdatChunk,
    Command,
    DataEnd,
    DataStart,
    Event,
    Gap,
    MessageHeader,
    Reply,
    StreamClosed,
    TlsClientHello,
    TlsStarted,
)
from analyzer.smtp.observer import BoundsDropped

from .message import NO_SUMMARY, decode_text, header_field, summarize
from .model import (
    NOTHING_DROPPED,
    Dropped,
    EndReason,
    HeaderField,
    Line,
    MailTransaction,
    SmtpSession,
    StartTls,
)

MAX_LINES_KEPT: Final = 10_000
"""Commands and replies kept per session; a hostile session cannot grow a transcript forever."""
MAX_ANOMALIES_KEPT: Final = 200
"""Anomalies kept per session (further ones are only counted)."""
MAX_TRANSACTIONS_KEPT: Final = 1_000
"""Transactions kept per session (further ones are only counted)."""
MAX_HEADERS_KEPT: Final = 200
"""Header fields kept per message (further ones are only counted)."""
MAX_RECIPIENTS_KEPT: Final = 10_000
"""Recipients (given, and accepted) kept per transaction: RFC 5321 §4.5.3.1.8 asks servers to
take at least 100, so no real envelope comes near; a pipelined flood of RCPTs stops here.

What each cap leaves out is counted and kept with the session (`SmtpSession.dropped`)."""

_CLIENT_TO_SERVER: Final = Direction.CLIENT_TO_SERVER
_SERVER_TO_CLIENT: Final = Direction.SERVER_TO_CLIENT


class _Txn:
    """A transaction under construction."""

    __slots__ = (
        "accepted",
        "complete",
        "data_offset",
        "data_started",
        "end_ts",
        "frame",
        "headers",
        "index",
        "mail_accepted",
        "mail_command",
        "mail_from",
        "mail_params",
        "rcpt_to",
        "reply_code",
        "reply_text",
        "size",
        "start_ts",
    )

    def __init__(
        self,
        index: int,
        mail_from: str | None,
        mail_params: tuple[tuple[str, str | None], ...],
        start_ts: float,
        frame: FrameRef | None,
        mail_command: int = 0,
    ) -> None:
        self.index = index
        self.mail_from = mail_from
        self.mail_params = mail_params
        self.start_ts = start_ts
        self.frame = frame
        self.mail_command = mail_command
        """id() of the MAIL command that opened it, to recognise the reply to it."""
        self.rcpt_to: list[str] = []
        self.accepted: list[str] = []
        self.data_started = False
        self.data_offset: int | None = None
        self.complete = False
        self.size: int | None = None
        self.reply_code: int | None = None
        self.reply_text: str | None = None
        self.headers: list[HeaderField] = []
        self.end_ts: float | None = None
        self.mail_accepted = False

    def freeze(self) -> MailTransaction:
        summary = summarize(self.headers) if self.headers else NO_SUMMARY
        return _new_transaction(
            index=self.index,
            mail_from=self.mail_from,
            mail_params=self.mail_params,
            rcpt_to=tuple(self.rcpt_to),
            accepted_rcpt_to=tuple(self.accepted),
            start_ts=self.start_ts,
            frame=self.frame,
            data_started=self.data_started,
            complete=self.complete,
            size=self.size,
            reply_code=self.reply_code,
            reply_text=self.reply_text,
            headers=tuple(self.headers),
            subject=summary.subject,
            header_from=summary.header_from,
            header_to=summary.header_to,
            message_id=summary.message_id,
            date=summary.date,
            data_offset=self.data_offset,
            end_ts=self.end_ts,
        )


def _reply_text(reply: Reply) -> str:
    """A reply's lines, decoded, one per line of text.

    The lines are decoded in one piece: UTF-8 decoding with `surrogateescape` maps each byte
    that is not part of a valid sequence on its own, and no sequence can span the inserted
    ASCII, so this is the same text as decoding line by line."""
    return decode_text(b"\n".join(reply.lines))


def _transcript_text(reply: Reply) -> str:
    """A reply's lines as a transcript shows them: `NNN-text` ... `NNN text` (a malformed
    reply, code 0, as sent). Decoded in one piece, as in `_reply_text`."""
    lines = reply.lines
    if len(lines) == 1:  # the common case
        text = lines[0].decode("utf-8", "surrogateescape")
        return f"{reply.code:03d} {text}" if reply.code else text
    text = decode_text(b"\n".join(lines))
    if not reply.code or not lines:
        return text
    code = f"{reply.code:03d}"
    more = code + "-"
    text = more + text.replace("\n", "\n" + more)
    last = text.rfind("\n" + more) + 1
    return f"{text[:last]}{code} {text[last + len(more) :]}"


def _envelope_path(args: bytes) -> tuple[bytes, dict[str, str | None]]:
    """The path and parameters of MAIL or RCPT arguments, read after their colon if any."""
    _, colon, rest = args.partition(b":")
    return parse_path(rest if colon else args)


_new_line: Final = quick_constructor(Line)
"""`Line(...)`, made faster: one is made per command and reply."""
_new_transaction: Final = quick_constructor(MailTransaction)
_new_session: Final = quick_constructor(SmtpSession)
_new_starttls = quick_constructor(StartTls)


class SessionBuilder:
    """Collects one connection's events; `build()` returns the finished session."""

    def __init__(self, flow: FlowInfo) -> None:
        self.flow = flow
        self._lines: list[Line] = []
        self._command_line_index: dict[int, int] = {}
        self._anomalies: list[Anomaly] = []
        self._anomalies_dropped = 0
        self._lines_dropped = 0
        self._txns_dropped = 0
        self._headers_dropped = 0
        self._rcpts_dropped = 0
        self._accepted_dropped = 0
        self._bounds: BoundsDropped | None = None
        """What the observer's bounds dropped, handed on at the end."""
        self._ends: list[StreamEnd] = []
        self._txns: list[MailTransaction] = []
        self._txn: _Txn | None = None
        self._outer: _Txn | None = None
        """The open transaction while a nested MAIL awaits its reply."""
        self._banner: Reply | None = None
        self._helo: Command | None = None
        self._ehlo_reply: Reply | None = None
        self._starttls_cmd: Command | None = None
        self._starttls_reply: Reply | None = None
        self._tls_started = False
        self._client_hello = False
        self._quit_seen = False
        self._quit_answered = False
        self._auth_mechanism: str | None = None
        self._gaps = 0
        self._last_event_gap = False
        self._last_ts = flow.start_ts
        self._keywords: tuple[str, ...] | None = None
        """The EHLO reply's keywords, once asked for."""

    # -- feeding -------------------------------------------------------------------------

    def add(self, events: Sequence[Event | BoundsDropped]) -> None:
        if not events:
            return
        handlers = _HANDLERS
        last_ts = self._last_ts
        for event in events:
            if event.ts > last_ts:
                last_ts = event.ts
            handlers[type(event)](self, event)
        self._last_ts = last_ts  # no handler reads it
        last = type(events[-1])
        if last is BoundsDropped:  # the observer's account, after its last event
            if len(events) == 1:
                return
            last = type(events[-2])
        self._last_event_gap = last is Gap

    def add_anomaly(self, anomaly: Anomaly) -> None:
        if len(self._anomalies) < MAX_ANOMALIES_KEPT:
            self._anomalies.append(anomaly)
        else:
            self._anomalies_dropped += 1

    def add_end(self, end: StreamEnd) -> None:
        self._ends.append(end)

    def _on_data_start(self, event: DataStart) -> None:
        if self._txn is not None:
            self._txn.data_started = True
            self._txn.data_offset = event.offset

    def _on_header(self, event: MessageHeader) -> None:
        txn = self._txn
        if txn is not None:
            if len(txn.headers) < MAX_HEADERS_KEPT:
                txn.headers.append(header_field(event))
            else:
                self._headers_dropped += 1

    def _on_bounds(self, event: BoundsDropped) -> None:
        self._bounds = event

    def _on_bdat_chunk(self, event: BdatChunk) -> None:
        if self._txn is not None:
            self._txn.data_started = True
            if self._txn.data_offset is None:
                self._txn.data_offset = event.offset

    def _on_tls_started(self, event: TlsStarted) -> None:
        self._tls_started = True

    def _on_client_hello(self, event: TlsClientHello) -> None:
        self._client_hello = True

    def _on_gap(self, event: Gap) -> None:
        self._gaps += 1

    def _on_anomaly(self, event: AnomalySeen) -> None:
        self.add_anomaly(
            Anomaly(
                kind=event.kind,
                detail=event.detail,
                frames=(event.frame,) if event.frame else (),
                ts=event.ts,
                direction=event.direction,
            )
        )

    def _on_stream_closed(self, event: StreamClosed) -> None:
        pass  # the flow layer's StreamEnd carries more (who sent it); see add_end

    def _on_command(self, cmd: Command) -> None:
        lines = self._lines
        if len(lines) < MAX_LINES_KEPT:
            self._command_line_index[id(cmd)] = len(lines)
            lines.append(
                _new_line(
                    _CLIENT_TO_SERVER,
                    cmd.raw.decode("utf-8", "surrogateescape"),  # decode_text, inlined
                    cmd.offset,
                    cmd.frame,
                    cmd.ts,
                    None,
                    cmd.verb,
                    None,
                )
            )
        else:
            self._lines_dropped += 1
        verb = cmd.verb
        if verb in ("EHLO", "HELO"):
            if self._helo is None:
                self._helo = cmd
        elif verb == "MAIL":
            current = self._txn
            if current is not None and current.mail_accepted and not current.data_started:
                # A MAIL inside an open transaction: the server will most likely refuse it
                # (503) and the first envelope stays in effect; decided when the reply comes.
                self._outer = current
            else:
                self._close_txn()
            path, params = _envelope_path(cmd.args)
            self._txn = _Txn(
                index=len(self._txns),
                mail_from=decode_text(path),
                mail_params=tuple(sorted(params.items())),
                start_ts=cmd.ts,
                frame=cmd.frame,
                mail_command=id(cmd),
            )
        elif verb == "RCPT":
            if self._txn is not None:
                path, _ = _envelope_path(cmd.args)
                if len(self._txn.rcpt_to) < MAX_RECIPIENTS_KEPT:
                    self._txn.rcpt_to.append(decode_text(path))
                else:
                    self._rcpts_dropped += 1
        elif verb in ("DATA", "BDAT"):
            if self._txn is not None:
                self._txn.data_started = True
        elif verb == "RSET":
            self._close_txn()
        elif verb == "STARTTLS":
            if self._starttls_cmd is None:
                self._starttls_cmd = cmd
        elif verb == "QUIT":
            self._quit_seen = True
        elif verb == "AUTH" and self._auth_mechanism is None:
            self._auth_mechanism = decode_text(cmd.args.split(b" ", 1)[0]).upper() or None

    def _on_reply(self, reply: Reply) -> None:
        answers = None
        if reply.command is not None:
            answers = self._command_line_index.get(id(reply.command))
        if len(self._lines) < MAX_LINES_KEPT:
            self._lines.append(
                _new_line(
                    _SERVER_TO_CLIENT,
                    _transcript_text(reply),
                    reply.offset,
                    reply.frame,
                    reply.ts,
                    reply.code,
                    None,
                    answers,
                )
            )
        else:
            self._lines_dropped += 1
        if reply.is_greeting:
            if self._banner is None:
                self._banner = reply
            return
        cmd = reply.command
        if cmd is None:
            return
        verb = cmd.verb
        if verb == "EHLO":
            if self._ehlo_reply is None and not self._tls_started and reply.code == 250:
                self._ehlo_reply = reply
        elif verb == "STARTTLS":
            if self._starttls_reply is None:
                self._starttls_reply = reply
        elif verb == "MAIL":
            self._on_mail_reply(reply)
        elif verb == "RCPT":
            txn = self._txn
            accepted = 200 <= reply.code < 300
            if txn is not None and accepted:
                if len(txn.accepted) < MAX_RECIPIENTS_KEPT:
                    path, _ = _envelope_path(cmd.args)
                    txn.accepted.append(decode_text(path))
                else:
                    self._accepted_dropped += 1
        elif verb in ("DATA", "BDAT"):
            if self._txn is not None and reply.code != 354:
                last_bdat = verb == "BDAT" and b"LAST" in cmd.args.upper()
                if verb == "DATA" or last_bdat or reply.code >= 400:
                    self._txn.reply_code = reply.code
                    self._txn.reply_text = _reply_text(reply)
                    self._txn.end_ts = reply.end_ts
                    if self._txn.complete:
                        self._close_txn()  # the envelope ends with the reply to its message
        elif verb == "QUIT":
            self._quit_answered = True

    def _on_mail_reply(self, reply: Reply) -> None:
        txn, outer = self._txn, self._outer
        if txn is None or reply.command is None or txn.mail_command != id(reply.command):
            return
        accepted = 200 <= reply.code < 300
        if outer is not None:
            self._outer = None
            if accepted:  # the server let the new MAIL replace the open transaction
                self._txn = outer
                self._close_txn()
                self._txn = txn
            else:  # refused: the first envelope is still the one in effect
                self._rcpts_dropped += _extend_capped(outer.rcpt_to, txn.rcpt_to)
                self._accepted_dropped += _extend_capped(outer.accepted, txn.accepted)
                self._txn = outer
                return
        txn.mail_accepted = accepted
        if not accepted:
            txn.reply_code = reply.code
            txn.reply_text = _reply_text(reply)

    def _on_data_end(self, event: DataEnd) -> None:
        if self._txn is None:
            self._txn = _Txn(
                index=len(self._txns), mail_from=None, mail_params=(), start_ts=event.ts, frame=None
            )
        self._txn.complete = event.complete
        self._txn.size = event.size
        self._txn.end_ts = event.ts

    def _close_txn(self) -> None:
        if self._txn is not None:
            if len(self._txns) < MAX_TRANSACTIONS_KEPT:
                self._txns.append(self._txn.freeze())
            else:
                self._txns_dropped += 1
        self._txn = None

    # -- result --------------------------------------------------------------------------

    def _end_reason(self) -> EndReason:
        if self._quit_seen and (self._quit_answered or self._ends):
            return EndReason.QUIT
        if any(end.kind is EndKind.RST for end in self._ends):
            return EndReason.RST
        if self._ends:
            return EndReason.FIN
        if self._last_event_gap:
            return EndReason.GAP
        return EndReason.EOF

    def _ehlo_keywords(self) -> tuple[str, ...]:
        if self._ehlo_reply is None:
            return ()
        if self._keywords is None:
            self._keywords = tuple(kw.name for kw in parse_ehlo_keywords(self._ehlo_reply))
        return self._keywords

    def _starttls(self) -> StartTls:
        advertised = "STARTTLS" in self._ehlo_keywords()
        reply = self._starttls_reply
        return _new_starttls(
            advertised=advertised,
            attempted=self._starttls_cmd is not None,
            reply_code=reply.code if reply else None,
            established=self._tls_started and self._client_hello,
            command_frame=self._starttls_cmd.frame if self._starttls_cmd else None,
            reply_frame=reply.frame if reply else None,
            reply_text=_reply_text(reply) if reply else None,
        )

    def _dropped(self) -> Dropped:
        bounds = self._bounds
        if not (
            bounds
            or self._lines_dropped
            or self._txns_dropped
            or self._headers_dropped
            or self._rcpts_dropped
            or self._accepted_dropped
            or self._anomalies_dropped
        ):
            return NOTHING_DROPPED
        return Dropped(
            lines=self._lines_dropped,
            transactions=self._txns_dropped,
            header_fields=self._headers_dropped,
            recipients=self._rcpts_dropped,
            accepted_recipients=self._accepted_dropped,
            anomalies=self._anomalies_dropped,
            anomaly_reports=tuple(sorted(bounds.unreported.items())) if bounds else (),
            line_bytes=bounds.line_bytes if bounds else 0,
            reply_lines=bounds.reply_lines if bounds else 0,
            pending_commands=bounds.pending_commands if bounds else 0,
            header_bytes=bounds.header_bytes if bounds else 0,
            header_sections=bounds.header_sections if bounds else 0,
        )

    def build(
        self,
        session_id: str,
        stats: FlowStats,
        tls_bytes: tuple[int, int] = (0, 0),
        streams: StreamPair | None = None,
    ) -> SmtpSession:
        self._close_txn()
        ehlo = self._ehlo_reply
        banner = self._banner
        helo = self._helo
        return _new_session(
            id=session_id,
            capture_id=self.flow.capture_id,
            flow=self.flow,
            start_ts=self.flow.start_ts,
            end_ts=max(self._last_ts, stats.end_ts or self._last_ts),
            banner=_reply_text(banner) if banner else None,
            banner_code=banner.code if banner else None,
            banner_frame=banner.frame if banner else None,
            helo_verb=helo.verb if helo else None,
            helo=decode_text(helo.args).strip() if helo else None,
            ehlo_keywords=self._ehlo_keywords(),
            ehlo_lines=tuple([decode_text(line) for line in ehlo.lines[1:]]) if ehlo else (),
            starttls=self._starttls(),
            transactions=tuple(self._txns),
            end_reason=self._end_reason(),
            lines=tuple(self._lines),
            anomalies=tuple(self._anomalies),
            stats=stats,
            ends=tuple(self._ends),
            auth_mechanism=self._auth_mechanism,
            tls_bytes=tls_bytes,
            gaps=self._gaps,
            dropped=self._dropped(),
            streams=streams,
        )


_HANDLERS: dict[type, Callable[[SessionBuilder, Any], None]] = {
    Command: SessionBuilder._on_command,
    Reply: SessionBuilder._on_reply,
    DataStart: SessionBuilder._on_data_start,
    MessageHeader: SessionBuilder._on_header,
    DataEnd: SessionBuilder._on_data_end,
    BdatChunk: SessionBuilder._on_bdat_chunk,
    TlsStarted: SessionBuilder._on_tls_started,
    TlsClientHello: SessionBuilder._on_client_hello,
    Gap: SessionBuilder._on_gap,
    AnomalySeen: SessionBuilder._on_anomaly,
    StreamClosed: SessionBuilder._on_stream_closed,
    BoundsDropped: SessionBuilder._on_bounds,
}
"""What each event type does to a session (every member of `Event`, and the observer's
`BoundsDropped`)."""


def _extend_capped(kept: list[str], more: list[str]) -> int:
    """Add `more` to `kept` up to `MAX_RECIPIENTS_KEPT`; returns how many did not fit."""
    room = max(0, MAX_RECIPIENTS_KEPT - len(kept))
    kept.extend(more[:room])
    return max(0, len(more) - room)
