"""Turn what Wireshark's SMTP dissector showed, frame by frame, into the observer's SMTP events.

The native observer delimits lines itself; here the dissector has done it, and this module
only gives its lines the meaning the observer gives them, with the observer's own pieces:
its tables (`analyzer.smtp.state`, `commands`), its reply assembler (`replies`), its command
queue (`pending`: replies tied to the commands they answer in order, RFC 2920, with the same
guesses past gaps and missing replies) and its anomaly reporter (`anomalies`: the same limit
per kind and direction, the same checks of each line). DATA answered 354 opens a message that
the dissector's end-of-data mark (or any server reply) closes, BDAT chunks are counted by size
(RFC 3030), STARTTLS answered 220 starts TLS (RFC 3207) and the dissector's TLS ClientHello
confirms it. What stays here is the step from the dissector's frames to lines, commands,
replies and message bytes.

The verb and arguments come from each `smtp.command_line`, not from `smtp.req.command`:
Wireshark 4.0 cuts verbs at four characters (`STARTTLS` shows as `STAR` with parameter `TLS`).
Where the dissector is wrong, this module is wrong with it; that is the point of a second
opinion. No packets, files or processes here.

Why one long module: the step from dissector frames to lines, with the message and BDAT
bookkeeping that only the dissector's view needs.
"""

from __future__ import annotations

from typing import Final

from analyzer._common import Direction, FrameRef
from analyzer.smtp.anomalies import AnomalyReporter, line_anomalies
from analyzer.smtp.commands import (
    is_known_verb,
    is_masked_auth,
    is_masked_verb,
    parse_bdat,
    redact_auth,
    split_command,
)
from analyzer.smtp.events import (
    BdatChunk,
    Command,
    DataEnd,
    DataStart,
    Event,
    Gap,
    Reply,
    SmtpAnomaly,
    StreamClosed,
    TlsClientHello,
    TlsStarted,
)
from analyzer.smtp.limits import (
    AUTH_LINE_MAX,
    COMMAND_LINE_MAX,
    CRLF,
    DEFAULT_MAX_LINE,
    END_OF_DATA,
    REPLY_LINE_MAX,
)
from analyzer.smtp.lines import Line
from analyzer.smtp.pending import CommandQueue
from analyzer.smtp.replies import AssembledReply, ReplyAssembler
from analyzer.smtp.state import (
    GREETING_CODES,
    ClientMode,
    CommandEffect,
    Effect,
    command_effect,
    reply_effect,
)

from .tshark_message import MessageBytes
from .tshark_pdml import SmtpFrame, WireLine

C2S: Final = Direction.CLIENT_TO_SERVER
S2C: Final = Direction.SERVER_TO_CLIENT
MARK_TAIL: Final = len(END_OF_DATA) - 1
"""Octets of the previous data kept to find an end-of-data mark split across frames."""


def _handed(f: SmtpFrame) -> tuple[int, bytes]:
    """The stream offset and bytes the dissector was handed in this frame (the last run of
    contiguous pieces; the payload when it showed none)."""
    if not f.pieces:
        return f.payload_offset, f.payload
    first = f.pieces[-1]
    offset, data = first.offset, first.data
    for piece in reversed(f.pieces[:-1]):
        if piece.offset + len(piece.data) != offset:
            break
        offset, data = piece.offset, piece.data + data
    return offset, data


def _terminator(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    if line.endswith(b"\n"):
        return b"\n"
    return b""


class SmtpSynth:
    """One connection's SMTP events, from the dissector's view of its frames."""

    def __init__(self) -> None:
        self._anomalies = AnomalyReporter()
        self._pending = CommandQueue(self._anomalies)
        self._client_seen = False
        self._mode = ClientMode.COMMANDS
        self._greeted = False
        self._server_seen = False
        self._replies = ReplyAssembler(DEFAULT_MAX_LINE)
        self._message: MessageBytes | None = None
        self._data_command: Command | None = None
        self._data_answered = False
        self._tail = b""
        """The last data octets fed (at most `MARK_TAIL`), for a mark split across frames."""
        self._tail_end = -1
        """Stream offset just after `_tail`."""
        self._chunk_end = 0
        self._chunk_size = 0
        self._chunk_last = False
        self._chunk_offset = 0
        self._chunk_frame: FrameRef | None = None
        self._chunk_ts = 0.0
        self._chunks_total = 0
        self._client_end = 0
        """Client stream offset after the last client byte given a meaning."""
        self._hello_checked = False
        self._out: list[Event] = []
        self.client_extent = 0
        """Client stream offset after the highest byte the connection carried (set by the
        caller from every segment, including those the dissector did not show)."""
        self.tls_offsets: tuple[int, int] | None = None
        """(client, server) stream offsets where TLS began, once STARTTLS was accepted."""

    # -- public surface -------------------------------------------------------------------

    def frame(self, f: SmtpFrame, direction: Direction, ref: FrameRef, ts: float) -> list[Event]:
        """The events of one frame the SMTP or TLS dissector looked at."""
        out: list[Event] = []
        self._out = out
        if direction is C2S:
            self._client_seen = True
            self._client_frame(f, ref, ts)
        else:
            self._server_seen = True
            if self._mode is not ClientMode.TLS:
                for line in f.responses:
                    self._server_line(line, ref, ts)
        return out

    def gap(
        self, direction: Direction, offset: int, length: int, ref: FrameRef, ts: float
    ) -> list[Event]:
        """Wireshark saw bytes missing before this segment. As in the observer, the reply in
        progress ends there, and a loss between commands and replies marks the command queue
        (which then guesses past it)."""
        out: list[Event] = [Gap(direction, offset, length, ref, ts)]
        self._out = out
        mode = self._mode
        if mode is ClientMode.TLS:
            return out
        if direction is S2C:
            self._flush_reply()
            self._pending.gap(False)
        elif mode is ClientMode.COMMANDS or (
            mode is ClientMode.CHUNK and offset + length > self._chunk_end
        ):
            self._pending.gap(True)
        return out

    def close(
        self, direction: Direction, reset: bool, offset: int, ref: FrameRef, ts: float
    ) -> list[Event]:
        """One direction ended with FIN or RST."""
        out: list[Event] = [StreamClosed(direction, reset, offset, ref, ts)]
        self._out = out
        if direction is C2S:
            self._end_message_at_close(
                ref,
                ts,
                "the client reset the connection inside the message"
                if reset
                else "the client closed its side inside the message",
            )
        else:
            self._flush_reply()
            if reset:
                self._end_message_at_close(
                    ref, ts, "the server side reset the connection inside the message"
                )
        return out

    def eof(self, ref: FrameRef | None, ts: float) -> list[Event]:
        """The capture ended: the unfinished reply and message are handed on as they are."""
        out: list[Event] = []
        self._out = out
        self._flush_reply()
        self._end_message_at_close(ref, ts, "the capture ended inside the message")
        return out

    # -- anomalies ------------------------------------------------------------------------

    def _report(
        self,
        kind: SmtpAnomaly,
        direction: Direction,
        detail: str,
        offset: int,
        frame: FrameRef | None,
        ts: float,
    ) -> None:
        self._anomalies.report(self._out, kind, direction, detail, offset, frame, ts)

    # -- client ---------------------------------------------------------------------------

    def _client_frame(self, f: SmtpFrame, ref: FrameRef, ts: float) -> None:
        mode = self._mode
        if mode is ClientMode.TLS:
            self._tls_frame(f, ref, ts)
            return
        if mode is ClientMode.MESSAGE:
            if f.eom or not f.commands:
                self._message_bytes(f, ref, ts)
            else:
                # The dissector reads commands here: for it, no message is running.
                self._cut_message(ref, ts, "the dissector read commands inside the message")
        elif mode is ClientMode.CHUNK:
            self._chunk_bytes(*_handed(f), ref, ts)
        for line in f.commands:
            if line.offset < self._client_end:
                continue  # bytes already taken (by a message, a chunk, or a retransmission)
            if self._mode is not ClientMode.COMMANDS:
                break
            self._command(line, f, ref, ts)

    def _command(self, line: WireLine, f: SmtpFrame, ref: FrameRef, ts: float) -> None:
        term = _terminator(line.data)
        content = line.data[: len(line.data) - len(term)]
        verb, args = split_command(content)
        raw = content
        known = is_known_verb(verb)
        auth = verb == "AUTH" or (not known and is_masked_auth(verb, args))
        if auth:
            raw, args = redact_auth(content)
        command = Command(verb, args, raw, term, line.offset, ref, ts, known)
        self._client_end = line.offset + len(line.data)
        self._out.append(command)
        line_anomalies(
            self._anomalies,
            self._out,
            Line(content, term, line.offset, len(content), ref, ref, ts, ts),
            C2S,
            AUTH_LINE_MAX if auth else COMMAND_LINE_MAX,
        )
        if is_masked_verb(verb):
            self._report(
                SmtpAnomaly.MASKED_COMMAND,
                C2S,
                f"command verb {verb[:32]} is made only of X's",
                line.offset,
                ref,
                ts,
            )
        elif not known:
            self._report(
                SmtpAnomaly.UNKNOWN_COMMAND,
                C2S,
                f"unknown command verb {verb[:32]!r}",
                line.offset,
                ref,
                ts,
            )
        pending = self._pending
        pending.push(command)
        effect = command_effect(verb)
        if effect is CommandEffect.MESSAGE_IF_UNANSWERED and not self._server_seen:
            pending.drop_last()
            self._start_message(command, answered=False)
        elif effect is CommandEffect.CHUNK:
            self._start_chunk(command, line, f, ref, ts)

    def _start_message(self, command: Command, *, answered: bool) -> None:
        at = self._client_end
        self._cut_message(
            command.frame, command.ts, "a new message started before the previous one ended"
        )
        self._message = MessageBytes(at, True, command.frame, command.ts)
        self._tail, self._tail_end = CRLF, at  # the command's CRLF: a line starts here
        self._data_command = command
        self._data_answered = answered
        self._mode = ClientMode.MESSAGE

    def _message_bytes(self, f: SmtpFrame, ref: FrameRef, ts: float) -> None:
        """Mail data in this frame; with the dissector's end mark, the message ends here."""
        message = self._message
        if message is None:
            return
        start, handed = _handed(f)
        begin = max(start, self._client_end)
        data = handed[begin - start :]
        if data and not message.started:
            self._out.append(DataStart(begin, ref, ts))
        tail = self._tail if self._tail_end == begin else b""
        if not f.eom:
            message.feed(data, begin, ref, ts)
            if data:
                self._tail, self._tail_end = (tail + data)[-MARK_TAIL:], begin + len(data)
                self._client_end = begin + len(data)
            return
        joined = tail + data
        mark = joined.find(END_OF_DATA)
        if mark < 0:
            # The dissector saw the end, this frame does not show where: take it all.
            data_end = end = begin + len(data)
            message.feed(data, begin, ref, ts)
        else:
            keep = mark + len(CRLF) - len(tail)  # the mark's first CRLF ends the last line
            message.feed(data[: max(0, keep)], begin, ref, ts)
            data_end = begin + keep
            end = begin + mark + len(END_OF_DATA) - len(tail)
        self._end_message(True, message.data_size(data_end), end, ref, ts, "")

    def _end_message(
        self,
        complete: bool,
        size: int,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        reason: str,
    ) -> None:
        message = self._message
        if message is None:
            return
        self._message = None
        self._mode = ClientMode.COMMANDS
        self._client_end = max(self._client_end, offset)
        if not message.started:
            self._out.append(DataStart(message.offset, frame, ts))
        self._out.extend(message.headers())
        end: DataEnd = message.end(complete, size, offset, frame, ts)
        self._out.append(end)
        if not complete:
            self._report(SmtpAnomaly.DATA_WITHOUT_END, C2S, reason, offset, frame, ts)
        data_command, self._data_command = self._data_command, None
        if data_command is not None and reason != _ANSWERED:
            self._pending.await_final(data_command)

    def _unfinished_size(self, message: MessageBytes) -> tuple[int, int]:
        """(size, end offset) of a message cut off now."""
        if self._mode is ClientMode.CHUNK:
            end = min(max(self._client_end, self.client_extent), self._chunk_end)
            return self._chunks_total + end - self._chunk_offset, end
        end = max(self._client_end, self.client_extent)
        return message.data_size(end), end

    def _cut_message(self, frame: FrameRef | None, ts: float, reason: str) -> None:
        """End the message in progress, if any, without its end mark."""
        if self._message is not None:
            size, end = self._unfinished_size(self._message)
            self._end_message(False, size, end, frame, ts, reason)

    def _end_message_at_close(self, frame: FrameRef | None, ts: float, reason: str) -> None:
        message = self._message
        if message is None:
            return
        size, end = self._unfinished_size(message)
        if self._mode is ClientMode.CHUNK:
            self._out.append(
                BdatChunk(
                    end - self._chunk_offset,
                    False,
                    self._chunk_offset,
                    self._chunk_frame,
                    self._chunk_ts,
                )
            )
        self._end_message(False, size, end, frame, ts, reason)

    def _start_chunk(
        self, command: Command, line: WireLine, f: SmtpFrame, ref: FrameRef, ts: float
    ) -> None:
        parsed = parse_bdat(command.args)
        if parsed is None:
            self._report(
                SmtpAnomaly.BDAT_BAD_SIZE,
                C2S,
                "BDAT without a valid chunk size: reading commands on",
                line.offset,
                ref,
                ts,
            )
            return
        size, last = parsed
        at = line.offset + len(line.data)
        if self._message is None or self._data_command is not None:
            self._cut_message(ref, ts, "BDAT started before the previous message ended")
            self._message = MessageBytes(at, False, ref, ts)
            self._chunks_total = 0
        else:
            self._message.resume_at(at)
        self._chunk_size = size
        self._chunk_end = at + size
        self._chunk_last = last
        self._chunk_offset = at
        self._chunk_frame = ref
        self._chunk_ts = ts
        self._mode = ClientMode.CHUNK
        self._chunk_bytes(*_handed(f), ref, ts)

    def _chunk_bytes(self, begin: int, payload: bytes, ref: FrameRef, ts: float) -> None:
        """Octets of the BDAT chunk in progress in one frame (`begin`: offset of payload[0])."""
        message = self._message
        if message is None:
            return
        start = max(begin, self._client_end)
        stop = min(begin + len(payload), self._chunk_end)
        if stop > start:
            if not message.started:
                self._out.append(DataStart(start, ref, ts))
            message.feed(payload[start - begin : stop - begin], start, ref, ts)
            self._client_end = stop
        if begin + len(payload) >= self._chunk_end:
            self._client_end = max(self._client_end, self._chunk_end)
            self._end_chunk(self._chunk_end, ref, ts)

    def _end_chunk(self, offset: int, frame: FrameRef | None, ts: float) -> None:
        self._mode = ClientMode.COMMANDS
        self._chunks_total += self._chunk_size
        self._out.append(
            BdatChunk(
                self._chunk_size,
                self._chunk_last,
                self._chunk_offset,
                self._chunk_frame,
                self._chunk_ts,
            )
        )
        if self._chunk_last:
            self._end_message(True, self._chunks_total, offset, frame, ts, "")

    def _tls_frame(self, f: SmtpFrame, ref: FrameRef, ts: float) -> None:
        if self._hello_checked or not f.payload:
            return
        self._hello_checked = True
        if f.client_hello is not None:
            self._out.append(TlsClientHello(f.client_hello, ref, ts))
        else:
            self._report(
                SmtpAnomaly.TLS_WITHOUT_CLIENT_HELLO,
                C2S,
                "the client's first bytes after STARTTLS are not a TLS ClientHello",
                f.payload_offset,
                ref,
                ts,
            )

    # -- server ---------------------------------------------------------------------------

    def _server_line(self, line: WireLine, ref: FrameRef, ts: float) -> None:
        term = _terminator(line.data)
        content = line.data[: len(line.data) - len(term)]
        wire = Line(content, term, line.offset, len(content), ref, ref, ts, ts)
        line_anomalies(self._anomalies, self._out, wire, S2C, REPLY_LINE_MAX)
        reply, oddity = self._replies.add(wire)
        if oddity is not None:
            self._report(oddity[0], S2C, oddity[1], line.offset, ref, ts)
        if reply is not None:
            self._complete_reply(reply, line.offset + len(line.data))

    def _flush_reply(self) -> None:
        unfinished = self._replies.flush()
        if unfinished is not None:
            self._complete_reply(unfinished, unfinished.offset + len(unfinished.raw))

    def _emit(self, partial: AssembledReply, command: Command | None, greeting: bool) -> Reply:
        reply = Reply(
            partial.code,
            partial.lines,
            partial.raw,
            command,
            greeting,
            partial.offset,
            partial.frame,
            partial.last_frame,
            partial.ts,
            partial.end_ts,
        )
        self._out.append(reply)
        return reply

    def _complete_reply(self, partial: AssembledReply, end_offset: int) -> None:
        code = partial.code
        if partial.dropped_lines:
            self._report(
                SmtpAnomaly.LINE_TRUNCATED,
                S2C,
                f"reply longer than {DEFAULT_MAX_LINE} octets: {partial.dropped_lines} lines "
                "not kept",
                partial.offset,
                partial.frame,
                partial.ts,
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
                self._emit(partial, None, True)
                return
        if code == 0:
            self._emit(partial, None, False)
            return
        data_command = self._data_command
        if self._mode is ClientMode.MESSAGE and data_command is not None:
            if code == 354 and not self._data_answered:
                self._data_answered = True
                self._emit(partial, data_command, False)
                return
            self._cut_message(partial.frame, partial.ts, _ANSWERED)
            self._emit(partial, data_command, False)
            return
        gap = pending.client_gap
        command = pending.match(code, self._out)
        reply = self._emit(partial, command, False)
        if command is None:
            if self._client_seen:
                pending.unanswered(self._out, code, gap, partial.offset, partial.frame, partial.ts)
            return
        effect = reply_effect(command.verb, code)
        if effect is Effect.START_MESSAGE:
            pending.drop_head(command)
            self._start_message(command, answered=True)
        elif effect is Effect.START_TLS:
            self._mode = ClientMode.TLS
            pending.clear()
            self.tls_offsets = (self._client_end, end_offset)
            self._out.append(
                TlsStarted(self._client_end, end_offset, reply.last_frame, reply.end_ts)
            )


_ANSWERED: Final = "answered"
"""Reason given when a server reply, not the end mark, ended a message."""
