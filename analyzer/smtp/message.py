"""One message's bytes (after DATA or inside BDAT chunks): header fields, size, line statistics,
and for DATA the end-of-data mark.

The header section is read line by line and each field is handed on as soon as it is complete.
The body is never split into lines in Python: the end mark is found with `bytes.find`, the size
is counted from lengths, and over-long lines, bare LFs and doubled dots are found with C-level
searches (`re`, `bytes.count`) over each chunk. Only the last few body bytes are kept between
chunks, so a message of any size costs constant memory. Which bytes are a message is decided by
the observer; this module never sees commands or replies.

Why one long module: one scanner whose fast paths must see the whole header and body state at
once.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Final

from analyzer._common import FrameMarks, FrameRef

from .events import DataEnd, Event, MessageHeader, SmtpAnomaly, new_data_end, new_message_header
from .limits import CRLF, END_OF_DATA, GAP_PROBE_MAX, HEADER_LINE_MAX, TEXT_LINE_MAX
from .lines import CR, LF, NUL, Line, LineReader

DOT: Final = 0x2E
TEXT_CONTENT_MAX: Final = TEXT_LINE_MAX - len(CRLF)
"""Longest line content (terminator and doubled dot excluded) within RFC 5321 §4.5.3.1.6."""

_FOLDING_WHITE_SPACE: Final = frozenset(b" \t")
"""What a continuation line of a folded header field begins with (RFC 5322 §2.2.3)."""
_FIELD_NAME: Final = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
"""A header field name and its colon (RFC 5322 §3.6.8 ftext; WSP before the colon is the
obsolete syntax of §4.5)."""
_LONG_RUN: Final = re.compile(rb"\n[^\n]{%d}" % (TEXT_CONTENT_MAX + 1))
"""A line start followed by enough octets that the line may be too long; the exact length
(CR and doubled dot excluded) is checked for each match."""
_LONG_LINE_SPAN: Final = TEXT_CONTENT_MAX + 2
"""Distance between the LFs around a line of TEXT_CONTENT_MAX + 1 octets (a CR counted): a line
can only be too long where two successive LFs are at least this far apart."""
_MARK_TAIL_LAST: Final = frozenset(b"\r\n.")
"""Last octets of the proper prefixes of the end mark ("\r", "\r\n", "\r\n.", "\r\n.\r")."""
_BARE_LF: Final = re.compile(rb"(?<!\r)\n")
_UNPAIRED_LF: Final = re.compile(rb"\n(?<!\r\n)")
"""An LF without a CR before it in the same chunk. It matches what `_BARE_LF` does (and an LF at
the chunk's first octet, whose CR may be in the previous chunk) but is found much faster: the
search skips from LF to LF instead of testing every octet."""
_COMMAND_AFTER_GAP: Final = re.compile(
    rb"(?:MAIL\s+FROM:|RCPT\s+TO:|(?:RSET|QUIT|NOOP|DATA|STARTTLS)\r?\n|(?:EHLO|HELO|LHLO) "
    rb"|BDAT \d|AUTH |VRFY |EXPN )",
    re.IGNORECASE,
)
"""Bytes after a gap inside a message that are a client command: the message ended in the gap."""

Report = Callable[[SmtpAnomaly, str, int, "FrameRef | None", float, int], None]
"""Where anomalies go: (kind, detail, stream offset, frame, ts, how many occurrences)."""

_Note = tuple[int, SmtpAnomaly, str, int, int]
"""An anomaly waiting to be reported: (offset where it became known, kind, detail, offset it
is about, occurrences)."""


def _may_hold_long_lines(data: bytes, first: int, last: int) -> bool:
    """Whether two successive LFs between the LFs at `first` and `last` are `_LONG_LINE_SPAN`
    or more apart: only then may a whole line there be too long.

    Each step goes from an LF to the last LF less than the span after it, so it skips most of
    a span at a time (lines are much shorter), and finds none only after a long line's start."""
    rfind = data.rfind
    at = first
    while last - at >= _LONG_LINE_SPAN:
        at = rfind(b"\n", at + 1, at + _LONG_LINE_SPAN)
        if at < 0:
            return True
    return False


class Outcome(enum.Enum):
    """Where a message stands after a chunk was consumed."""

    RUNNING = "running"
    COMPLETE = "complete"
    """The end-of-data mark was consumed (DATA only)."""
    ENDED_IN_GAP = "ended_in_gap"
    """The bytes after a gap are commands: the message's end was lost in the gap. The bytes
    already looked at are in `take_probe()`."""


class _Field:
    """A header field being collected, line by line."""

    __slots__ = ("frame", "last_frame", "longest", "name", "offset", "raw", "ts")

    def __init__(
        self,
        name: bytes,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        last_frame: FrameRef | None,
        longest: int,
    ) -> None:
        self.name = name
        self.offset = offset
        self.frame = frame
        self.ts = ts
        self.last_frame = last_frame
        self.longest = longest
        self.raw = bytearray()

    def add(self, text: bytes, line: Line, length: int) -> None:
        self.raw += text
        self.raw += line.terminator
        self.last_frame = line.last_frame
        self.longest = max(self.longest, length)

    def freeze(self) -> MessageHeader:
        return new_message_header(
            self.name,
            bytes(self.raw),
            self.offset,
            self.longest,
            self.frame,
            self.last_frame,
            self.ts,
        )


class _Probe:
    """The bytes looked at after a gap, in case they turn out to be commands."""

    __slots__ = ("data", "frame", "offset", "ts")

    def __init__(self, data: bytearray, offset: int, frame: FrameRef | None, ts: float) -> None:
        self.data = data
        self.offset = offset
        self.frame = frame
        self.ts = ts


class MessageScanner:
    """Consumes the bytes of one message and reports its headers and its end."""

    __slots__ = (
        "_bare_lf",
        "_field",
        "_header_block",
        "_headers_done",
        "_last_cr",
        "_line_offset",
        "_long_lines",
        "_max_header_block",
        "_notes",
        "_nul_seen",
        "_plain_limit",
        "_prev_crlf",
        "_probe",
        "_reader",
        "_report",
        "_run",
        "_run_dot",
        "_size",
        "_skip_line",
        "_stuffed",
        "_tail",
        "_text_long_reported",
        "header_bytes_dropped",
        "header_cut",
        "outcome",
    )

    def __init__(
        self, *, dot_stuffed: bool, max_line: int, max_header_block: int, report: Report
    ) -> None:
        self._stuffed = dot_stuffed
        self._report = report
        self._max_header_block = max_header_block
        self._reader = LineReader(max_line)
        self._plain_limit = min(HEADER_LINE_MAX, max(1, max_line))
        """Longest header line `_plain_header_lines` takes: kept whole, not too long."""
        self._headers_done = False
        self.header_bytes_dropped = 0
        """Bytes of over-long header lines not kept (`max_line` kept of each)."""
        self.header_cut = False
        """The header section outgrew `max_header_block`: the rest was read as body."""
        self._field: _Field | None = None
        self._header_block = bytearray()
        self._prev_crlf = True
        self._size = 0
        self._bare_lf = 0
        self._long_lines = 0
        self._text_long_reported = False
        self._nul_seen = False
        self._notes: list[_Note] = []
        # Body state: the last (up to 4) octets seen, for an end mark split across chunks; the
        # length of the line in progress, whether it began with a dot, whether it ends in CR.
        self._tail = CRLF
        self._run = 0
        self._run_dot = False
        self._last_cr = False
        self._line_offset = 0
        self._skip_line = False
        self._probe: _Probe | None = None
        self.outcome = Outcome.RUNNING

    @property
    def size(self) -> int:
        return self._size

    @property
    def buffered(self) -> int:
        """Bytes held: partial header line, header section and field, gap probe."""
        held = self._reader.buffered + len(self._header_block) + len(self._tail)
        if self._field is not None:
            held += len(self._field.raw)
        if self._probe is not None:
            held += len(self._probe.data)
        return held

    @property
    def in_body(self) -> bool:
        """The header section is over and no gap is being looked past: `consume_body` applies."""
        return self._headers_done and self._probe is None

    # -- consuming -------------------------------------------------------------------------

    def consume_body(
        self, data: bytes, pos: int, end: int, base: int, marks: FrameMarks, out: list[Event]
    ) -> int:
        """`consume` for body bytes (`in_body`) that several segments carried: `marks` says
        which frame carried each byte."""
        frame, ts = marks.locate(base + pos)
        return self._body(data, pos, end, base, frame, ts, marks)

    def consume(
        self,
        data: bytes,
        pos: int,
        end: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        out: list[Event],
    ) -> int:
        """Consume `data[pos:end]` (`base` is the stream offset of data[0]); returns the position
        after the last byte consumed, which is before `end` only when `outcome` changed."""
        if self._headers_done and self._probe is None:
            return self._body(data, pos, end, base, frame, ts)
        if self._probe is not None:
            pos = self._probe_bytes(data, pos, end, base, frame, ts, out)
            if self._probing() or self.outcome is not Outcome.RUNNING:
                return pos
        if not self._headers_done:
            reader = self._reader
            while pos < end:
                if not reader.pending:
                    pos = self._plain_header_lines(data, pos, end, base, frame, ts, out)
                    if pos >= end:
                        break
                line, pos = reader.take(data, pos, end, base, frame, ts)
                if line is None:
                    if self._field is not None:
                        self._hand_on_field_if_over(out)
                    return pos
                if self._header_line(line, out):
                    self.outcome = Outcome.COMPLETE
                    return pos
                if self._headers_done:
                    break
        if pos < end:
            return self._body(data, pos, end, base, frame, ts)
        return pos

    def gap(
        self, offset: int, length: int, frame: FrameRef | None, ts: float, out: list[Event]
    ) -> None:
        """`length` bytes of the message were not captured: stop reading headers (they can no
        longer be told from the body), count the bytes, and for DATA look at what follows."""
        self._size += self._reader.drop()
        if not self._headers_done:
            self._end_headers(out)
        if self._probe is not None:
            self._size += len(self._probe.data)
        self._size += length
        self._tail = b""
        self._run = 0
        self._skip_line = True
        self._last_cr = False
        self._probe = _Probe(bytearray(), offset + length, frame, ts) if self._stuffed else None

    def take_probe(self) -> tuple[bytes, int, FrameRef | None, float]:
        """The bytes looked at after a gap, when `outcome` is ENDED_IN_GAP."""
        probe = self._probe
        self._probe = None
        if probe is None:
            return b"", 0, None, 0.0
        return bytes(probe.data), probe.offset, probe.frame, probe.ts

    def finish(
        self, complete: bool, offset: int, frame: FrameRef | None, ts: float, out: list[Event]
    ) -> DataEnd:
        """End the message (with its mark, or because the stream ended or broke): hand on the
        header field in progress and return the DataEnd."""
        if not self._headers_done:
            line = self._reader.flush(frame, ts)
            if line is not None:
                self._header_line(line, out)
            if not self._headers_done:
                self._end_headers(out)
        elif self._run and not self._skip_line:
            self._line_done(self._run - self._run_dot, self._line_offset, offset)
            self._flush_notes(frame, ts)
        if self._probe is not None:
            self._size += len(self._probe.data)
            self._probe = None
        return new_data_end(
            complete,
            self._size,
            bytes(self._header_block),
            offset,
            frame,
            ts,
            self._bare_lf,
            self._long_lines,
        )

    # -- header section --------------------------------------------------------------------

    def _header_line(self, line: Line, out: list[Event]) -> bool:
        """Account one line of the header section; True when it is the end-of-data mark."""
        content = line.content
        term = line.terminator
        stuffed = False
        if self._stuffed and content[:1] == b".":
            if line.length == 1 and term == CRLF and self._prev_crlf:
                return True
            stuffed = True
        self._prev_crlf = term == CRLF
        length = line.length - stuffed
        text = content[1:] if stuffed else content
        current = self._field
        if current is not None and (not text or text[0] not in _FOLDING_WHITE_SPACE):
            # The field in progress is complete: hand it on before anything about this line.
            out.append(current.freeze())
            self._field = current = None
        self._size += length + len(term)
        if term == b"\n":
            self._bare_lf += 1
            self._report(
                SmtpAnomaly.BARE_LF,
                "message line ended by a bare LF",
                line.offset,
                line.frame,
                line.ts,
                1,
            )
        if not self._nul_seen and NUL in content:
            self._nul_seen = True
            self._report(
                SmtpAnomaly.NUL_BYTE,
                "NUL octet in the message",
                line.offset,
                line.frame,
                line.ts,
                1,
            )
        if line.truncated:
            self.header_bytes_dropped += line.length - len(content)
            self._report(
                SmtpAnomaly.LINE_TRUNCATED,
                f"message line of {line.length} octets: {len(content)} kept",
                line.offset,
                line.frame,
                line.ts,
                1,
            )
        if not text and not length:
            self._end_headers(out)
            self._tail = term
            return False
        name = _FIELD_NAME.match(text)
        if current is not None:
            current.add(text, line, length)
        elif name is not None:
            self._field = _Field(name[1], line.offset, line.frame, line.ts, line.frame, 0)
            self._field.add(text, line, length)
        else:
            # Not a field: the header section is over and this is the body's first line
            # (what the `email` package does with such a line).
            if length > TEXT_CONTENT_MAX:
                self._line_done(length, line.offset, line.end_offset)
                self._flush_notes(line.last_frame, line.end_ts)
            self._end_headers(out)
            self._tail = term
            return False
        if length > TEXT_CONTENT_MAX:
            self._long_lines += 1
        if length > HEADER_LINE_MAX:
            assert self._field is not None
            self._report(
                SmtpAnomaly.HEADER_LINE_TOO_LONG,
                f"{self._field.name.decode('ascii', 'backslashreplace')} header line of "
                f"{length} octets (limit {HEADER_LINE_MAX})",
                line.offset,
                line.frame,
                line.ts,
                1,
            )
        block = self._header_block
        block += text
        block += term
        if len(block) > self._max_header_block:
            del block[self._max_header_block :]
            self.header_cut = True
            self._report(
                SmtpAnomaly.LINE_TRUNCATED,
                f"header section longer than {self._max_header_block} octets: the rest is "
                "read as body",
                line.offset,
                line.frame,
                line.ts,
                1,
            )
            self._end_headers(out)
            self._tail = term
        return False

    def _plain_header_lines(
        self,
        data: bytes,
        pos: int,
        end: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        out: list[Event],
    ) -> int:
        """Account the complete header lines at `data[pos:end]` that need none of
        `_header_line`'s care -- CRLF-terminated, not empty, no leading dot, no NUL, short,
        a new field or a continuation of one -- exactly as `_header_line` would, without making
        `Line`s; returns where the first other line (or the partial one) begins.

        Such lines are taken as sent (nothing to unstuff, every terminator a CRLF), so the
        header section, the size and each field grow by whole slices of `data`, not line by
        line, and a field whose lines are all here is handed on as one slice."""
        start = pos
        limit = self._plain_limit
        room = self._max_header_block - len(self._header_block)
        nul = end if self._nul_seen else data.find(NUL, pos, end)
        if nul < 0:
            nul = end
        stuffed = self._stuffed
        field_name = _FIELD_NAME.match
        current = self._field  # a field begun before these lines
        unkept = pos  # where the bytes of `current` not yet in its `raw` begin
        begun: bytes | None = None  # the name of a field begun among these lines, at `begun_at`
        begun_at = longest = 0
        while True:
            nl = data.find(b"\n", pos, end)
            length = nl - 1 - pos
            if length <= 0 or length > limit or data[nl - 1] != CR or nl > nul:
                break
            first = data[pos]
            if first == DOT and stuffed:
                break
            room -= length + 2
            if room < 0:
                break
            if first in _FOLDING_WHITE_SPACE:
                if begun is not None:
                    if length > longest:
                        longest = length
                elif current is not None:
                    current.last_frame = frame
                    if length > current.longest:
                        current.longest = length
                else:
                    break
            else:
                if begun is not None:
                    out.append(
                        new_message_header(
                            begun, data[begun_at:pos], base + begun_at, longest, frame, frame, ts
                        )
                    )
                    begun = None
                elif current is not None:
                    current.raw += data[unkept:pos]
                    out.append(current.freeze())
                    current = None
                name = field_name(data, pos, nl - 1)
                if name is None:
                    break
                begun = name[1]
                begun_at = pos
                longest = length
            pos = nl + 1
        if begun is not None:
            current = _Field(begun, base + begun_at, frame, ts, frame, longest)
            current.raw += data[begun_at:pos]
        elif current is not None:
            current.raw += data[unkept:pos]
        self._field = current
        if pos > start:
            self._prev_crlf = True
            self._size += pos - start
            self._header_block += data[start:pos]
        return pos

    def _hand_on_field_if_over(self, out: list[Event]) -> None:
        """The next line has begun: unless it begins with white space (a continuation), the
        field in progress is complete and is handed on now, not when that line ends."""
        head = self._reader.head(2)
        if self._stuffed and head[:1] == b".":
            head = head[1:]
        if head and head[0] not in _FOLDING_WHITE_SPACE and self._field is not None:
            out.append(self._field.freeze())
            self._field = None

    def _end_headers(self, out: list[Event]) -> None:
        if self._field is not None:
            out.append(self._field.freeze())
            self._field = None
        self._headers_done = True

    # -- body ------------------------------------------------------------------------------

    def _body(
        self,
        data: bytes,
        s: int,
        end: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        marks: FrameMarks | None = None,
    ) -> int:
        """Account body octets data[s:end] up to the end mark, if it is there; returns the
        position after what was consumed."""
        chunk = data if s == 0 and end == len(data) else data[s:end]
        base += s
        dot = -1
        if self._stuffed:
            # A doubled dot or the end mark both contain "\n.": one search finds either.
            if chunk.find(b".") >= 0:
                dot = chunk.find(b"\n.")
            mark_end = -1
            tail = self._tail
            if tail and tail[-1] in _MARK_TAIL_LAST:
                j = (tail + chunk[:4]).find(END_OF_DATA)
                if j >= 0:
                    mark_end = j + len(END_OF_DATA) - len(tail)
            if mark_end < 0 and dot >= 0:
                k = chunk.find(END_OF_DATA, max(0, dot - 1))
                if k >= 0:
                    mark_end = k + len(END_OF_DATA)
            if mark_end >= 0:
                self.outcome = Outcome.COMPLETE
                stop = mark_end - 3  # the '.' of ".\r\n"
                if stop < 0:
                    # The dot (and CR) came at the end of the previous chunk and were counted
                    # then: the dot as a doubled one (no size), the CR as one octet.
                    self._size += stop + 1
                    self._run = 0
                elif stop:
                    self._account(chunk[:stop], dot, base, frame, ts, marks)
                return s + mark_end
        self._account(chunk, dot, base, frame, ts, marks)
        return end

    def _account(
        self,
        chunk: bytes,
        dot: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        marks: FrameMarks | None = None,
    ) -> None:
        """Count the body octets of `chunk` (stream offset `base`) without splitting them into
        lines in Python; `dot` is the position of the first "\n." in it, or -1."""
        n = len(chunk)
        tail = self._tail
        stuffed = self._stuffed
        dots = 0
        if stuffed:
            if 0 <= dot < n - 1:
                dots = chunk.count(b"\n.")
            if chunk[0] == DOT and tail[-1:] == b"\n":
                dots += 1
        self._size += n - dots
        if not self._nul_seen:
            nul = chunk.find(b"\x00")
            if nul >= 0:
                self._nul_seen = True
                self._notes.append(
                    (base + nul, SmtpAnomaly.NUL_BYTE, "NUL octet in the message", base + nul, 1)
                )
        first = chunk.find(b"\n")
        if first < 0:
            if not self._run and not self._skip_line:
                self._run_dot = stuffed and chunk[0] == DOT
                self._line_offset = base
            self._run += n
            self._last_cr = chunk[-1] == CR
        else:
            bare = 0
            if _UNPAIRED_LF.search(chunk, first) is not None:
                bare = (
                    chunk.count(b"\n") - chunk.count(b"\r\n") - (first == 0 and tail[-1:] == b"\r")
                )
            if bare:
                self._bare_lf += bare
                self._note_bare_lf(chunk, base, bare)
            if self._skip_line:
                self._skip_line = False
            else:
                if not self._run:
                    self._run_dot = stuffed and first > 0 and chunk[0] == DOT
                    self._line_offset = base
                cr = chunk[first - 1] == CR if first else self._last_cr
                length = self._run + first - cr - self._run_dot
                if length > TEXT_CONTENT_MAX:
                    self._line_done(length, self._line_offset, base + first)
            last = chunk.rfind(b"\n")
            if _may_hold_long_lines(chunk, first, last):
                self._long_runs(chunk, first, last, base)
            run = n - last - 1
            self._run = run
            if run:
                self._run_dot = stuffed and chunk[last + 1] == DOT
                self._line_offset = base + last + 1
                self._last_cr = chunk[-1] == CR
            else:
                self._last_cr = False
        self._tail = chunk[-4:] if n >= 4 else (tail + chunk)[-4:]
        if self._notes:
            self._flush_notes(frame, ts, marks)

    def _long_runs(self, data: bytes, first: int, last: int, base: int) -> None:
        """Count too-long lines among the whole lines between the LFs at `first` and `last`."""
        search = _LONG_RUN.search
        match = search(data, first, last)
        while match is not None:
            start = match.start() + 1
            stop = data.find(b"\n", match.end(), last + 1)
            length = stop - start - (data[stop - 1] == CR) - (self._stuffed and data[start] == DOT)
            if length > TEXT_CONTENT_MAX:
                self._line_done(length, base + start, base + stop)
            match = search(data, stop, last)

    def _line_done(self, length: int, offset: int, known_at: int) -> None:
        """A line of `length` octets starting at `offset` ended at `known_at`: count it if it is
        too long (reported once per message)."""
        if length <= TEXT_CONTENT_MAX:
            return
        self._long_lines += 1
        if not self._text_long_reported:
            self._text_long_reported = True
            self._notes.append(
                (
                    known_at,
                    SmtpAnomaly.TEXT_LINE_TOO_LONG,
                    f"message line of {length} octets (limit {TEXT_LINE_MAX} with CRLF)",
                    offset,
                    1,
                )
            )

    def _note_bare_lf(self, chunk: bytes, base: int, count: int) -> None:
        if chunk[0] == LF and self._tail[-1:] != b"\r":
            where = 0
        else:
            found = _BARE_LF.search(chunk, 1)
            where = found.start() if found is not None else 0
        self._notes.append(
            (base + where, SmtpAnomaly.BARE_LF, "message line ended by a bare LF", base + where,
             count)
        )  # fmt: skip

    def _flush_notes(
        self, frame: FrameRef | None, ts: float, marks: FrameMarks | None = None
    ) -> None:
        """Report what was noted, in the order of where each became known in the stream, so
        that the order does not depend on how the stream was cut into segments; with `marks`,
        each with the frame of the segment where it became known."""
        notes = sorted(self._notes, key=lambda note: note[0])
        self._notes.clear()
        for known_at, kind, detail, offset, count in notes:
            if marks is not None:
                frame, ts = marks.locate(known_at)
            self._report(kind, detail, offset, frame, ts, count)

    # -- after a gap -----------------------------------------------------------------------

    def _probing(self) -> bool:
        """Whether a probe is still collecting its line. Asked after `_probe_bytes`, which may
        end it: a plain `self._probe is not None` there would keep mypy's narrowing from the
        test before the call, which mypyc compiles into a check that fails once it ended."""
        return self._probe is not None

    def _probe_bytes(
        self,
        data: bytes,
        pos: int,
        end: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        out: list[Event],
    ) -> int:
        """Collect the first line after a gap (at most GAP_PROBE_MAX octets), then decide
        whether it is a command (the message ended in the gap) or more of the message."""
        probe = self._probe
        assert probe is not None
        if not probe.data:
            probe.offset = base + pos
            probe.frame = frame
            probe.ts = ts
        room = GAP_PROBE_MAX - len(probe.data)
        nl = data.find(b"\n", pos, min(end, pos + room))
        stop = nl + 1 if nl >= 0 else min(end, pos + room)
        probe.data += data[pos:stop]
        if nl < 0 and len(probe.data) < GAP_PROBE_MAX:
            return stop
        if _COMMAND_AFTER_GAP.match(probe.data):
            self.outcome = Outcome.ENDED_IN_GAP
            return stop
        self._probe = None
        seen = bytes(probe.data)
        self.consume(seen, 0, len(seen), probe.offset, probe.frame, probe.ts, out)
        return stop
