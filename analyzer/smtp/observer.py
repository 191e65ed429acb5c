"""The sans-IO SMTP observer: both directions' bytes of one connection in, SMTP events out.

It watches, it does not enforce (Zeek `SMTP.cc`: the purpose is to guess the state, not to check
correctness). Every oddity on the wire becomes an `AnomalySeen`; nothing raises. Gaps, one-sided
captures, resets and the end of the capture are ordinary input. Replies are tied to the commands
they answer by `pending.CommandQueue` (RFC 2920 pipelining, gaps, resynchronisation), anomalies
are reported and counted by `anomalies.AnomalyReporter`, mail data is handed to `message` (the
header section included), TLS after STARTTLS to `tls`, and what replies do to the session comes
from the tables in `state`.

SASL responses during AUTH are consumed without a trace: no event carries their bytes.

The observer does no I/O and keeps bounded memory: one partial line per direction (at most
`max_line` bytes), one header section (at most `max_header_block` bytes), a bounded queue of
commands waiting for replies, and a few bytes of TLS record header. What these bounds leave out
is counted and handed on after the last event (`BoundsDropped`).

Why one long module: the dispatch over commands, replies, DATA, BDAT and TLS shares one
connection's state; the command queue (`pending`), the anomaly reporter (`anomalies`), lines and
replies already live apart.
"""

from __future__ import annotations

from typing import Final, cast

from analyzer._common import Direction, FrameMarks, FrameRef

from .anomalies import AnomalyReporter, line_anomalies
from .commands import (
    VERBS,
    auth_parts,
    is_masked_auth,
    is_masked_verb,
    looks_like_sasl_response,
    parse_bdat,
    split_command,
)
from .events import (
    Command,
    Event,
    Gap,
    Reply,
    SmtpAnomaly,
    TlsStarted,
    new_bdat_chunk,
    new_command,
    new_data_start,
    new_reply,
    new_stream_closed,
)
from .limits import (
    AUTH_LINE_MAX,
    COMMAND_LINE_MAX,
    DEFAULT_MAX_HEADER_BLOCK,
    DEFAULT_MAX_LINE,
    REPLY_LINE_MAX,
)
from .lines import Line, LineReader
from .message import MessageScanner, Outcome
from .pending import CommandQueue
from .replies import AssembledReply, ReplyAssembler, advertises
from .state import (
    ENDS_CHUNKED_MESSAGE,
    GREETING_CODES,
    NO_COMMAND_EFFECT,
    NO_EFFECT,
    ClientMode,
    CommandEffect,
    Effect,
    command_effect,
    reply_effect,
)
from .tls import TlsWalker

C2S: Final = Direction.CLIENT_TO_SERVER
S2C: Final = Direction.SERVER_TO_CLIENT

COMMANDS: Final = ClientMode.COMMANDS
MESSAGE: Final = ClientMode.MESSAGE
CHUNK: Final = ClientMode.CHUNK
TLS: Final = ClientMode.TLS
RUNNING: Final = Outcome.RUNNING
"""Enum members compared on every line, bound to module names: on Python 3.11 reading a member
from its class costs several times as much as reading a global."""

SASL_CHALLENGE: Final = 334
"""A server challenge in a SASL exchange; the client answers with one line (RFC 4954 §4)."""


class BoundsDropped:
    """What the observer's own bounds (`limits`) dropped in one connection, counted exactly.

    `feed_eof` hands one on after its events, only when something was dropped: it is the
    observer's account of itself, not something seen on the wire."""

    __slots__ = (
        "header_bytes",
        "header_sections",
        "line_bytes",
        "pending_commands",
        "reply_lines",
        "ts",
        "unreported",
    )

    def __init__(
        self,
        ts: float,
        line_bytes: int,
        reply_lines: int,
        pending_commands: int,
        unreported: dict[str, int],
        header_bytes: int = 0,
        header_sections: int = 0,
    ) -> None:
        self.ts = ts
        self.header_bytes = header_bytes
        """Bytes of over-long message header lines not kept (`max_line` kept of each)."""
        self.header_sections = header_sections
        """Messages whose header section outgrew `max_header_block` (the rest read as body)."""
        self.line_bytes = line_bytes
        """Bytes of over-long command and reply lines skipped (`max_line` kept of each)."""
        self.reply_lines = reply_lines
        """Lines of replies longer than `max_line` not kept."""
        self.pending_commands = pending_commands
        """Commands forgotten unanswered beyond `MAX_PENDING_COMMANDS`."""
        self.unreported = unreported
        """Anomalies only counted beyond `ANOMALY_REPORT_LIMIT`, by kind. (The kinds reported
        once, `anomalies.REPORTED_ONCE`, characterise a peer; their repeats are not counted.)"""

    def _fields(self) -> tuple[object, ...]:
        return (
            self.ts,
            self.line_bytes,
            self.reply_lines,
            self.pending_commands,
            self.unreported,
            self.header_bytes,
            self.header_sections,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundsDropped) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BoundsDropped{self._fields()!r}"


class _Side:
    """Where one direction's stream stands."""

    __slots__ = ("closed", "last_frame", "last_ts", "next_offset", "reader", "seen")

    def __init__(self, max_line: int) -> None:
        self.reader = LineReader(max_line)
        self.next_offset: int | None = None
        self.last_frame: FrameRef | None = None
        self.last_ts = 0.0
        self.closed = False
        self.seen = False


def _advance(side: _Side, offset: int, marks: FrameMarks) -> None:
    """`side` took the bytes of the run `marks` describes up to stream offset `offset`."""
    side.next_offset = offset
    side.last_frame, side.last_ts = marks.locate(offset - 1)
    side.seen = True


class SmtpObserver:
    """Guesses the SMTP state of one TCP connection from the bytes of both directions.

    Feed the two directions' bytes in capture order; every call returns the events that the
    bytes completed. `offset` is the stream offset of `data[0]` in its direction; bytes that
    several segments carried come with `marks` saying where each segment begins, so that every
    event names the frame that carried it.
    """

    def __init__(
        self, *, max_line: int = DEFAULT_MAX_LINE, max_header_block: int = DEFAULT_MAX_HEADER_BLOCK
    ) -> None:
        self._max_line = max(1, max_line)
        self._max_header_block = max(0, max_header_block)
        self._client = _Side(self._max_line)
        self._server = _Side(self._max_line)
        self._replies = ReplyAssembler(self._max_line)
        self._mode = COMMANDS
        self._anomalies = AnomalyReporter()
        self._pending = CommandQueue(self._anomalies)
        self._greeted = False
        self._extensions_known = False
        self._pipelining = False
        # SASL exchange: the AUTH command whose exchange may be running, and how many 334
        # challenges still wait for the client's response line.
        self._auth: Command | None = None
        self._sasl_expected = 0
        self._secrets: list[tuple[int, int]] = []
        """Client stream ranges [start, end) that held AUTH credentials, not yet taken."""
        self._resync_client = False
        # The message in progress (DATA or BDAT).
        self._message: MessageScanner | None = None
        self._message_started = False
        self._message_offset = 0
        self._data_command: Command | None = None
        """DATA whose message is flowing; its final reply comes after the end mark."""
        self._data_answered = False
        """The 354 was seen (False when a capture without server bytes entered data at once)."""
        self._chunk_left = 0
        self._chunk_size = 0
        self._chunk_last = False
        self._chunk_offset = 0
        self._chunk_frame: FrameRef | None = None
        self._chunk_ts = 0.0
        self._chunk_started = False
        self._walkers: dict[Direction, TlsWalker] = {}
        self._eof = False
        self._out: list[Event] = []
        self.in_tls = False
        self.tls_bytes: dict[Direction, int] = {C2S: 0, S2C: 0}
        self.anomaly_counts: dict[SmtpAnomaly, int] = self._anomalies.counts
        """Every anomaly seen, by kind, including those not reported again as events."""
        # What the bounds dropped (`BoundsDropped`).
        self._line_bytes_skipped = 0
        self._header_bytes_skipped = 0
        self._header_sections_cut = 0
        self._reply_lines_dropped = 0

    # -- public surface -------------------------------------------------------------------

    def take_secrets(self) -> list[tuple[int, int]]:
        """Client stream ranges [start, end) found since the last call to hold AUTH credentials
        (initial responses, SASL responses): whoever keeps the raw bytes blanks them
        (`blank_secrets`). Empty for any session without AUTH."""
        secrets = self._secrets
        if secrets:
            self._secrets = []
        return secrets

    def feed(
        self,
        direction: Direction,
        data: bytes | bytearray | memoryview,
        *,
        offset: int,
        ts: float,
        frame: FrameRef | None,
        marks: FrameMarks | None = None,
    ) -> list[Event]:
        """Bytes of one direction, in stream order; returns the events they completed.

        `frame` and `ts` are those of the segment that carried `data[0]`; with `marks`, of
        each segment (then `frame` and `ts` are not used).
        """
        if type(data) is not bytes:
            data = bytes(data)  # a bytearray or memoryview: searched below as bytes
        if marks is not None and len(marks.offsets) > 1:
            return self._feed_run(direction, data, offset, marks)
        out: list[Event] = []
        self._out = out
        if not data:
            return out
        client = direction == C2S
        message = self._message
        if (
            client
            and message is not None
            and self._mode is MESSAGE
            and self._message_started
            and offset == self._client.next_offset
            and not self._client.closed
        ):
            # The hot path: the body of a message, in order.
            side = self._client
            side.next_offset = offset + len(data)
            side.last_frame = frame
            side.last_ts = ts
            pos = message.consume(data, 0, len(data), offset, frame, ts, out)
            if message.outcome is not RUNNING:
                self._message_outcome(message, offset, pos, frame, ts)
                self._client_bytes(data, offset, frame, ts, pos)
            return out
        side = self._client if client else self._server
        if side.closed:
            self._report(
                SmtpAnomaly.DATA_AFTER_CLOSE,
                C2S if client else S2C,
                "bytes after this direction closed (FIN or RST)",
                offset,
                frame,
                ts,
            )
        expected = side.next_offset
        if expected is not None and offset != expected:
            if offset > expected:
                self._gap(client, expected, offset - expected, ts, frame)
            else:
                cut = expected - offset
                if cut >= len(data):
                    return out
                data = data[cut:]
                offset = expected
        side.next_offset = offset + len(data)
        side.last_frame = frame
        side.last_ts = ts
        side.seen = True
        if client:
            self._client_bytes(data, offset, frame, ts)
        else:
            self._server_bytes(data, offset, frame, ts)
        return out

    def _feed_run(
        self, direction: Direction, data: bytes, offset: int, marks: FrameMarks
    ) -> list[Event]:
        """Bytes several segments carried: message bodies, BDAT chunks and TLS records in one
        go, since only their rare events need a frame (found through `marks`); everything else
        segment by segment."""
        out: list[Event] = []
        offsets = marks.offsets
        last = len(offsets) - 1
        n = len(data)
        side = self._client if direction == C2S else self._server
        pos = i = 0
        while pos < n:
            if offset + pos == side.next_offset and not side.closed:
                self._out = out
                stop = self._take_in_bulk(direction, data, pos, n, offset, marks)
                if stop > pos:
                    pos = stop
                    i = marks.index(offset + pos)
                    continue
            stop = offsets[i + 1] - offset if i < last else n
            out += self.feed(
                direction,
                data[pos:stop],
                offset=offset + pos,
                ts=marks.times[i],
                frame=marks.frames[i],
            )
            pos = stop
            i += 1
        self._out = out
        return out

    def _take_in_bulk(
        self, direction: Direction, data: bytes, pos: int, end: int, base: int, marks: FrameMarks
    ) -> int:
        """Take the bytes at `data[pos:end]` (in step with the stream) that are message body,
        BDAT chunk or TLS records, all at once; returns the position after them, `pos` when
        the bytes there are none of these."""
        if direction == S2C:
            if not self.in_tls:
                return pos
            self._tls_bytes(S2C, data, pos, end, base, None, 0.0, marks)
            _advance(self._server, base + end, marks)
            return end
        side = self._client
        mode = self._mode
        if mode is TLS:
            self._tls_bytes(C2S, data, pos, end, base, None, 0.0, marks)
            _advance(side, base + end, marks)
            return end
        message = self._message
        if message is None or not message.in_body or not self._message_started:
            return pos
        if mode is MESSAGE:
            stop = message.consume_body(data, pos, end, base, marks, self._out)
            _advance(side, base + stop, marks)
            if message.outcome is not RUNNING:
                self._message_outcome(message, base, stop, side.last_frame, side.last_ts)
            return stop
        if mode is CHUNK and self._chunk_started:
            stop = min(end, pos + self._chunk_left)
            message.consume_body(data, pos, stop, base, marks, self._out)
            _advance(side, base + stop, marks)
            self._chunk_left -= stop - pos
            if not self._chunk_left:
                self._end_chunk(base + stop, side.last_frame, side.last_ts)
            return stop
        return pos

    def feed_gap(
        self,
        direction: Direction,
        *,
        offset: int,
        length: int,
        ts: float,
        frame: FrameRef | None,
    ) -> list[Event]:
        """`length` bytes of one direction were never captured; resynchronise after them."""
        out: list[Event] = []
        self._out = out
        self._gap(direction == C2S, offset, length, ts, frame)
        return out

    def feed_close(
        self,
        direction: Direction,
        *,
        reset: bool,
        offset: int,
        ts: float,
        frame: FrameRef | None,
    ) -> list[Event]:
        """One direction ended with FIN (`reset=False`) or RST."""
        out: list[Event] = []
        self._out = out
        client = direction == C2S
        side = self._client if client else self._server
        side.closed = True
        out.append(new_stream_closed(C2S if client else S2C, reset, offset, frame, ts))
        if client:
            self._flush_client(
                frame,
                ts,
                "the client reset the connection inside the message"
                if reset
                else "the client closed its side inside the message",
            )
        else:
            self._flush_server(frame, ts)
            if reset and self._message is not None:
                self._end_message(
                    False,
                    self._client_offset(),
                    frame,
                    ts,
                    "the server side reset the connection inside the message",
                )
        return out

    def feed_eof(self, *, ts: float) -> list[Event | BoundsDropped]:
        """The capture ended: flush partial lines, the unfinished reply and message. Last comes
        what the observer's bounds dropped (`BoundsDropped`), when they dropped anything."""
        out: list[Event] = []
        self._out = out
        if self._eof:
            return cast("list[Event | BoundsDropped]", out)
        self._eof = True
        self._flush_client(self._client.last_frame, ts, "the capture ended inside the message")
        self._flush_server(self._server.last_frame, ts)
        self._walkers = {}  # they call back into this observer: a reference cycle
        result = cast("list[Event | BoundsDropped]", out)
        dropped = self.dropped(ts)
        if dropped is not None:
            result.append(dropped)
        return result

    def dropped(self, ts: float) -> BoundsDropped | None:
        """What the bounds dropped so far, or None when nothing."""
        unreported = self._anomalies.unreported
        forgotten = self._pending.forgotten
        if not (
            unreported
            or self._line_bytes_skipped
            or self._reply_lines_dropped
            or forgotten
            or self._header_bytes_skipped
            or self._header_sections_cut
        ):
            return None
        return BoundsDropped(
            ts,
            self._line_bytes_skipped,
            self._reply_lines_dropped,
            forgotten,
            {str(kind): count for kind, count in unreported.items()},
            self._header_bytes_skipped,
            self._header_sections_cut,
        )

    def buffered(self, direction: Direction) -> int:
        """Bytes held for one direction (partial line, message header, TLS record header)."""
        if direction == C2S:
            held = self._client.reader.buffered
            if self._message is not None:
                held += self._message.buffered
        else:
            held = self._server.reader.buffered
        walker = self._walkers.get(direction)
        if walker is not None:
            held += walker.buffered
        return held

    # -- anomalies ------------------------------------------------------------------------

    def _report(
        self,
        kind: SmtpAnomaly,
        direction: Direction,
        detail: str,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        count: int = 1,
    ) -> None:
        self._anomalies.report(self._out, kind, direction, detail, offset, frame, ts, count)

    def _client_report(
        self,
        kind: SmtpAnomaly,
        detail: str,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        count: int = 1,
    ) -> None:
        self._report(kind, C2S, detail, offset, frame, ts, count)

    def _server_report(
        self, kind: SmtpAnomaly, detail: str, offset: int, frame: FrameRef | None, ts: float
    ) -> None:
        self._report(kind, S2C, detail, offset, frame, ts)

    def _line_anomalies(self, line: Line, direction: Direction, limit: int) -> None:
        """What is odd about a line as a line (`anomalies.line_anomalies`)."""
        self._line_bytes_skipped += line_anomalies(
            self._anomalies, self._out, line, direction, limit
        )

    # -- client ---------------------------------------------------------------------------

    def _client_offset(self) -> int:
        return self._client.next_offset or 0

    def _client_bytes(
        self, data: bytes, base: int, frame: FrameRef | None, ts: float, pos: int = 0
    ) -> None:
        end = len(data)
        reader = self._client.reader
        while pos < end:
            mode = self._mode
            if mode is MESSAGE:
                message = self._message
                assert message is not None
                if not self._message_started:
                    self._message_started = True
                    self._out.append(new_data_start(base + pos, frame, ts))
                pos = message.consume(data, pos, end, base, frame, ts, self._out)
                if message.outcome is not RUNNING:
                    self._message_outcome(message, base, pos, frame, ts)
            elif mode is COMMANDS:
                line, pos = reader.take(data, pos, end, base, frame, ts)
                if line is None:
                    return
                self._client_line(line)
            elif mode is CHUNK:
                pos = self._chunk_bytes(data, pos, end, base, frame, ts)
            else:
                self._tls_bytes(C2S, data, pos, end, base, frame, ts)
                return

    def _message_outcome(
        self, message: MessageScanner, base: int, pos: int, frame: FrameRef | None, ts: float
    ) -> None:
        """The message ended inside the bytes just consumed (up to `pos`)."""
        if message.outcome is Outcome.COMPLETE:
            self._end_message(True, base + pos, frame, ts, "")
        elif message.outcome is Outcome.ENDED_IN_GAP:
            probe, at, probe_frame, probe_ts = message.take_probe()
            self._end_message(
                False,
                at,
                probe_frame,
                probe_ts,
                "the message's end was lost in a capture gap: commands follow",
            )
            self._client_bytes(probe, at, probe_frame, probe_ts)

    def _client_line(self, line: Line) -> None:
        content = line.content
        if (self._sasl_expected or self._auth is not None) and self._is_sasl_response(content):
            if self._sasl_expected:
                self._sasl_expected -= 1
            self._line_anomalies(line, C2S, AUTH_LINE_MAX)
            if line.length:
                # The whole line, also the part beyond `max_line` that was not kept.
                self._secrets.append((line.offset, line.offset + line.length))
            return
        verb, args = split_command(content)
        known = verb in VERBS
        masked = not known and is_masked_verb(verb)
        auth = verb == "AUTH" or (not known and is_masked_auth(verb, args))
        if self._resync_client:
            self._resync_client = False
            if not known and not masked:
                self._report(
                    SmtpAnomaly.COMMAND_AFTER_GAP,
                    C2S,
                    f"skipped {line.wire_length} octets after a gap to reach a line start",
                    line.offset,
                    line.frame,
                    line.ts,
                )
                return
            self._report(
                SmtpAnomaly.COMMAND_AFTER_GAP,
                C2S,
                f"commands resume after a gap with {verb}",
                line.offset,
                line.frame,
                line.ts,
            )
        raw = content
        if auth:
            raw, args, secret = auth_parts(content)
            if secret < len(content):
                self._secrets.append((line.offset + secret, line.offset + line.length))
        command = new_command(
            verb, args, raw, line.terminator, line.offset, line.frame, line.ts, known
        )
        out = self._out
        out.append(command)
        self._line_anomalies(line, C2S, AUTH_LINE_MAX if auth else COMMAND_LINE_MAX)
        if masked:
            self._report(
                SmtpAnomaly.MASKED_COMMAND,
                C2S,
                f"command verb {verb[:32]} is made only of X's",
                line.offset,
                line.frame,
                line.ts,
            )
        elif not known:
            self._report(
                SmtpAnomaly.UNKNOWN_COMMAND,
                C2S,
                f"unknown command verb {verb[:32]!r}",
                line.offset,
                line.frame,
                line.ts,
            )
        pending = self._pending
        waiting = pending.last()
        if waiting is not None and self._extensions_known and not self._pipelining:
            self._report(
                SmtpAnomaly.PIPELINING_NOT_ADVERTISED,
                C2S,
                f"{verb[:32]} sent before the reply to {waiting.verb[:32]}, and the server "
                "did not advertise PIPELINING",
                line.offset,
                line.frame,
                line.ts,
            )
        self._auth = None
        self._sasl_expected = 0
        if self._message is not None and verb in ENDS_CHUNKED_MESSAGE:
            self._end_message(
                False,
                line.offset,
                line.frame,
                line.ts,
                f"{verb} came before BDAT LAST: the chunked message was abandoned",
            )
        pending.push(command)
        if auth:
            # A masked AUTH too: its SASL responses are consumed as AUTH's are.
            self._auth = command
            return
        effect = command_effect(verb)
        if effect is NO_COMMAND_EFFECT:
            return
        if effect is CommandEffect.SASL:
            self._auth = command
        elif effect is CommandEffect.MESSAGE_IF_UNANSWERED:
            if not self._server.seen:
                pending.drop_last()
                self._start_message(command, answered=False, at=line.end_offset)
        elif effect is CommandEffect.CHUNK:
            self._start_chunk(command, line)

    def _is_sasl_response(self, content: bytes) -> bool:
        """During AUTH: the line is a SASL response, not a command. After a 334 challenge it is
        one whatever it looks like; otherwise (no reply seen yet: a one-sided capture, a gap,
        a client that did not wait) only a line shaped like one and not a bare verb is."""
        if self._sasl_expected:
            return True
        return looks_like_sasl_response(content) and content.upper().decode("ascii") not in VERBS

    # -- messages -------------------------------------------------------------------------

    def _start_message(self, command: Command, *, answered: bool, at: int) -> None:
        if self._message is not None:
            self._end_message(
                False,
                at,
                command.frame,
                command.ts,
                "a new message started before the previous one ended",
            )
        self._message = MessageScanner(
            dot_stuffed=True,
            max_line=self._max_line,
            max_header_block=self._max_header_block,
            report=self._client_report,
        )
        self._message_started = False
        self._message_offset = at
        self._data_command = command
        self._data_answered = answered
        self._mode = MESSAGE
        partial = self._client.reader.detach()
        if partial is not None:
            data, offset, frame, ts = partial
            self._client_bytes(data, offset, frame, ts)

    def _end_message(
        self,
        complete: bool,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        reason: str,
        *,
        answered: bool = False,
    ) -> None:
        """End the message in progress. Its DATA command then waits for its final reply,
        unless the reply that `answered` it is what ended the message."""
        message = self._message
        if message is None:
            return
        self._message = None
        self._mode = COMMANDS
        out = self._out
        if not self._message_started:
            out.append(new_data_start(self._message_offset, frame, ts))
        self._message_started = False
        out.append(message.finish(complete, offset, frame, ts, out))
        self._header_bytes_skipped += message.header_bytes_dropped
        if message.header_cut:
            self._header_sections_cut += 1
        if not complete:
            self._report(SmtpAnomaly.DATA_WITHOUT_END, C2S, reason, offset, frame, ts)
        data_command = self._data_command
        self._data_command = None
        if data_command is not None and not answered:
            self._pending.await_final(data_command)

    def _start_chunk(self, command: Command, line: Line) -> None:
        parsed = parse_bdat(command.args)
        if parsed is None:
            self._report(
                SmtpAnomaly.BDAT_BAD_SIZE,
                C2S,
                "BDAT without a valid chunk size: reading commands on",
                line.offset,
                line.frame,
                line.ts,
            )
            return
        size, last = parsed
        at = line.end_offset
        if self._message is None:
            self._message = MessageScanner(
                dot_stuffed=False,
                max_line=self._max_line,
                max_header_block=self._max_header_block,
                report=self._client_report,
            )
            self._message_started = False
            self._message_offset = at
        self._chunk_size = size
        self._chunk_left = size
        self._chunk_last = last
        self._chunk_offset = at
        self._chunk_frame = line.last_frame
        self._chunk_ts = line.end_ts
        self._chunk_started = False
        if size:
            self._mode = CHUNK
        else:
            self._end_chunk(at, line.last_frame, line.end_ts)

    def _chunk_bytes(
        self, data: bytes, pos: int, end: int, base: int, frame: FrameRef | None, ts: float
    ) -> int:
        message = self._message
        assert message is not None
        stop = min(end, pos + self._chunk_left)
        if not self._chunk_started:
            self._chunk_started = True
            self._chunk_frame = frame
            self._chunk_ts = ts
        if not self._message_started:
            self._message_started = True
            self._out.append(new_data_start(base + pos, frame, ts))
        message.consume(data, pos, stop, base, frame, ts, self._out)
        self._chunk_left -= stop - pos
        if not self._chunk_left:
            self._end_chunk(base + stop, frame, ts)
        return stop

    def _end_chunk(self, offset: int, frame: FrameRef | None, ts: float) -> None:
        self._mode = COMMANDS
        self._out.append(
            new_bdat_chunk(
                self._chunk_size,
                self._chunk_last,
                self._chunk_offset,
                self._chunk_frame,
                self._chunk_ts,
            )
        )
        if self._chunk_last:
            self._end_message(True, offset, frame, ts, "")

    # -- server ---------------------------------------------------------------------------

    def _server_bytes(self, data: bytes, base: int, frame: FrameRef | None, ts: float) -> None:
        pos = 0
        end = len(data)
        reader = self._server.reader
        while pos < end:
            if self.in_tls:
                self._tls_bytes(S2C, data, pos, end, base, frame, ts)
                return
            line, pos = reader.take(data, pos, end, base, frame, ts)
            if line is None:
                return
            self._server_line(line)

    def _server_line(self, line: Line) -> None:
        self._line_anomalies(line, S2C, REPLY_LINE_MAX)
        reply, oddity = self._replies.add(line)
        if oddity is not None:
            self._report(oddity[0], S2C, oddity[1], line.offset, line.frame, line.ts)
        if reply is not None:
            self._reply(reply, line.end_offset)

    def _reply(self, assembled: AssembledReply, end_offset: int) -> None:
        code = assembled.code
        if assembled.dropped_lines:
            self._reply_lines_dropped += assembled.dropped_lines
            self._report(
                SmtpAnomaly.LINE_TRUNCATED,
                S2C,
                f"reply longer than {self._max_line} octets: {assembled.dropped_lines} lines "
                "not kept",
                assembled.offset,
                assembled.frame,
                assembled.ts,
            )
        pending = self._pending
        if not self._greeted:
            self._greeted = True
            head = pending.head()
            waiting = head is not None or self._data_command is not None
            if not waiting or (
                (code in GREETING_CODES or code == 0) and (head is None or head.verb != "STARTTLS")
            ):
                if head is not None:
                    self._report(
                        SmtpAnomaly.COMMAND_BEFORE_GREETING,
                        C2S,
                        f"{head.verb[:32]} was sent before the server's greeting",
                        head.offset,
                        head.frame,
                        head.ts,
                    )
                self._emit_reply(assembled, None, greeting=True)
                return
        if code == 0:
            self._emit_reply(assembled, None)
            return
        data_command = self._data_command
        if self._mode is MESSAGE and data_command is not None:
            if code == 354 and not self._data_answered:
                self._data_answered = True
                self._emit_reply(assembled, data_command)
                return
            self._end_message(
                False,
                self._client_offset(),
                assembled.frame,
                assembled.ts,
                "the server replied before the end-of-data mark",
                answered=True,
            )
            self._emit_reply(assembled, data_command)
            return
        gap = pending.client_gap
        command = pending.match(code, self._out)
        reply = self._emit_reply(assembled, command)
        if code == SASL_CHALLENGE:
            # Whatever it answers (an AUTH lost in a gap, too), the client's next line is a
            # SASL response: never read it as a command.
            self._sasl_expected += 1
        elif self._sasl_expected or (
            command is not None and (command.verb == "AUTH" or command is self._auth)
        ):
            self._sasl_expected = 0
            self._auth = None
        if command is None:
            if self._client.seen:
                pending.unanswered(
                    self._out, code, gap, assembled.offset, assembled.frame, assembled.ts
                )
            return
        verb = command.verb
        effect = reply_effect(verb, code)
        if effect is NO_EFFECT:
            return
        if effect is Effect.START_MESSAGE:
            pending.drop_head(command)
            self._start_message(command, answered=True, at=self._client_offset())
        elif effect is Effect.LEARN_EXTENSIONS:
            self._extensions_known = True
            self._pipelining = verb != "HELO" and advertises(reply, "PIPELINING")
        elif effect is Effect.START_TLS:
            self._start_tls(reply, end_offset)
        elif effect is Effect.SASL_CHALLENGE:
            self._auth = command

    def _emit_reply(
        self, assembled: AssembledReply, command: Command | None, *, greeting: bool = False
    ) -> Reply:
        reply = new_reply(
            assembled.code,
            assembled.lines,
            assembled.raw,
            command,
            greeting,
            assembled.offset,
            assembled.frame,
            assembled.last_frame,
            assembled.ts,
            assembled.end_ts,
        )
        self._out.append(reply)
        return reply

    # -- TLS ------------------------------------------------------------------------------

    def _start_tls(self, reply: Reply, server_offset: int) -> None:
        self.in_tls = True
        self._mode = TLS
        self._pending.clear()
        self._auth = None
        self._walkers = {
            C2S: TlsWalker(client=True, report=self._client_report),
            S2C: TlsWalker(client=False, report=self._server_report),
        }
        reader = self._client.reader
        pending_at = self._client_offset() - reader.pending
        self._out.append(TlsStarted(pending_at, server_offset, reply.last_frame, reply.end_ts))
        held = reader.pending
        partial = reader.detach()
        if partial is not None:
            data, offset, frame, ts = partial
            self._tls_bytes(C2S, data, 0, len(data), offset, frame, ts)
        else:
            self.tls_bytes[C2S] += held

    def _tls_bytes(
        self,
        direction: Direction,
        data: bytes,
        pos: int,
        end: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        marks: FrameMarks | None = None,
    ) -> None:
        self.tls_bytes[direction] += end - pos
        walker = self._walkers.get(direction)
        if walker is not None:  # None only after feed_eof
            walker.feed(data, pos, end, base, frame, ts, self._out, marks)

    # -- gaps and ends --------------------------------------------------------------------

    def _gap(
        self, client: bool, offset: int, length: int, ts: float, frame: FrameRef | None
    ) -> None:
        direction = C2S if client else S2C
        side = self._client if client else self._server
        self._out.append(Gap(direction, offset, length, frame, ts))
        side.next_offset = offset + max(0, length)
        if self.in_tls:
            walker = self._walkers.get(direction)
            if walker is not None:
                walker.gap()
            return
        if not client:
            side.reader.drop()
            unfinished = self._replies.flush()
            if unfinished is not None:
                self._reply(unfinished, offset)
            self._pending.gap(False)
            return
        mode = self._mode
        if mode is MESSAGE:
            assert self._message is not None
            if not self._message_started:
                self._message_started = True
                self._out.append(new_data_start(self._message_offset, frame, ts))
            self._message.gap(offset, length, frame, ts, self._out)
        elif mode is CHUNK:
            assert self._message is not None
            if length < self._chunk_left:
                self._chunk_left -= length
                self._message.gap(offset, length, frame, ts, self._out)
            else:
                self._message.gap(offset, self._chunk_left, frame, ts, self._out)
                overshoot = length > self._chunk_left
                self._chunk_left = 0
                self._end_chunk(offset + length, frame, ts)
                if overshoot:
                    self._pending.gap(True)
                    self._resync_client = True
        else:
            side.reader.drop()
            self._pending.gap(True)
            self._resync_client = True

    def _flush_client(self, frame: FrameRef | None, ts: float, reason: str) -> None:
        mode = self._mode
        if mode is COMMANDS:
            line = self._client.reader.flush(frame, ts)
            if line is not None:
                self._client_line(line)
        if self._message is not None:
            self._end_message(False, self._client_offset(), frame, ts, reason)

    def _flush_server(self, frame: FrameRef | None, ts: float) -> None:
        if self.in_tls:
            return
        line = self._server.reader.flush(frame, ts)
        if line is not None:
            self._server_line(line)
        unfinished = self._replies.flush()
        if unfinished is not None:
            self._reply(unfinished, self._server.next_offset or 0)
