"""One message's bytes as Wireshark assigned them to mail data: size, header section, header fields.

The SMTP dissector decides which bytes are mail data and in which frame the end-of-data mark
is; this module only counts and cuts. It keeps the header section (bounded) and the frame that
carried each of its bytes, counts the rest and undoes dot-stuffing in the count (RFC 5321
§4.5.2). The header section is split into fields by the observer's own reader
(`analyzer.smtp.message.MessageScanner`: folding by RFC 5322 §2.2.3, field names, dot-stuffing),
so both engines read the same bytes into the same fields; its anomalies are not reported here.

The IMF dissector's own field positions are not used: they count from the first byte Wireshark
took for mail data, which is not the message's first byte when it took earlier client bytes
for data too (a masked `XXXXXXXX` command before DATA, for one), and it then reads that line
and the first real header as one unknown field.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from analyzer._common import FrameRef
from analyzer.smtp.events import DataEnd, Event, MessageHeader, SmtpAnomaly
from analyzer.smtp.limits import CRLF, DEFAULT_MAX_HEADER_BLOCK, DEFAULT_MAX_LINE
from analyzer.smtp.message import MessageScanner, Outcome

DOT = 0x2E
LF = 0x0A


@dataclass(slots=True)
class MessageBytes:
    """The message in progress, fed in stream order.

    Its size is measured on the stream (where it began and where its data ended, from TCP
    sequence numbers), less the doubled dots of the bytes seen: bytes the dissector never
    showed (retransmitted, out of order, lost) still count, as on the wire.
    """

    offset: int
    """Client→server stream offset of the message's first byte."""
    dot_stuffed: bool
    """DATA (True) or BDAT chunks (False, taken as they are: RFC 3030 §2)."""
    frame: FrameRef | None
    ts: float
    head: bytearray = field(default_factory=bytearray)
    """The raw (still stuffed) start of the message, up to the end of its header section."""
    head_done: bool = False
    chunk_offsets: list[int] = field(default_factory=list)
    """Index in `head` where each fed chunk began, with its frame and time below."""
    chunk_streams: list[int] = field(default_factory=list)
    """Stream offset of each fed chunk's first byte."""
    chunk_frames: list[FrameRef | None] = field(default_factory=list)
    chunk_ts: list[float] = field(default_factory=list)
    dots: int = 0
    """Doubled dots at line starts removed by unstuffing."""
    after_lf: bool = True
    """The octet before the next one is LF (or none was fed): a dot next would start a line."""
    next_offset: int = -1
    """Stream offset after the last byte fed."""
    started: bool = False

    def feed(self, data: bytes, offset: int, frame: FrameRef | None, ts: float) -> None:
        """Bytes of the message at stream offset `offset` (never before what was fed)."""
        if not data:
            return
        self.started = True
        if self.next_offset < 0:
            self.next_offset = self.offset
        if offset != self.next_offset:
            self.head_done = True  # a hole: the header section can no longer be told
            self.after_lf = False
        self.next_offset = offset + len(data)
        if self.dot_stuffed:
            self.dots += data.count(b"\n.") + (self.after_lf and data[0] == DOT)
            self.after_lf = data[-1] == LF
        if not self.head_done:
            self.chunk_offsets.append(len(self.head))
            self.chunk_streams.append(offset)
            self.chunk_frames.append(frame)
            self.chunk_ts.append(ts)
            self.head += data
            end = _header_end(self.head)
            if end is not None:
                del self.head[end:]
                self.head_done = True
            elif len(self.head) > DEFAULT_MAX_HEADER_BLOCK:
                del self.head[DEFAULT_MAX_HEADER_BLOCK:]
                self.head_done = True

    def resume_at(self, offset: int) -> None:
        """The next bytes (a further BDAT chunk) start at stream offset `offset`: the command
        line in between is not a hole in the message."""
        self.next_offset = offset

    def _where(self, index: int) -> tuple[FrameRef | None, float, int]:
        """Frame, time and stream offset of byte `index` of the header section."""
        i = bisect.bisect_right(self.chunk_offsets, index) - 1
        if i < 0:
            return self.frame, self.ts, self.offset + index
        return (
            self.chunk_frames[i],
            self.chunk_ts[i],
            self.chunk_streams[i] + index - self.chunk_offsets[i],
        )

    def headers(self) -> list[MessageHeader]:
        """The header fields of the header section, read by the observer's own header-section
        reader (`analyzer.smtp.message.MessageScanner`), each kept chunk with its frame."""
        scanner = MessageScanner(
            dot_stuffed=self.dot_stuffed,
            max_line=DEFAULT_MAX_LINE,
            max_header_block=DEFAULT_MAX_HEADER_BLOCK,
            report=_unreported,
        )
        out: list[Event] = []
        head = bytes(self.head)
        starts = self.chunk_offsets
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else len(head)
            if stop > start:
                base = self.chunk_streams[i] - start
                scanner.consume(
                    head, start, stop, base, self.chunk_frames[i], self.chunk_ts[i], out
                )
                if scanner.outcome is not Outcome.RUNNING:
                    break
        last = len(starts) - 1
        if last >= 0:
            scanner.finish(
                False, self.next_offset, self.chunk_frames[last], self.chunk_ts[last], out
            )
        return [event for event in out if isinstance(event, MessageHeader)]

    def data_size(self, data_end: int) -> int:
        """Size of a DATA message whose data ran to stream offset `data_end` (the end mark
        excluded, the CRLF before it included), after unstuffing."""
        return max(0, data_end - self.offset - self.dots)

    def end(
        self, complete: bool, size: int, offset: int, frame: FrameRef | None, ts: float
    ) -> DataEnd:
        """The `DataEnd` of this message; `offset` is where it ended (after the mark, if any)."""
        block = bytes(self.head[: _section_end(bytes(self.head), include_blank=True)])
        if self.dot_stuffed:
            block = _unstuff(block)
        return DataEnd(
            complete=complete,
            size=size,
            header_block=block,
            offset=offset,
            frame=frame,
            ts=ts,
        )


def _unreported(
    kind: SmtpAnomaly, detail: str, offset: int, frame: FrameRef | None, ts: float, count: int
) -> None:
    """Anomalies of the header section are the observer's to report: the engine reports only
    what the dissector showed it."""


def _header_end(head: bytearray) -> int | None:
    """Index just after the blank line that ends the header section, when it is there."""
    if head[:2] == CRLF:
        return 2
    if head[:1] == b"\n":
        return 1
    i = head.find(b"\n\r\n")
    j = head.find(b"\n\n")
    found = [k for k in (i + 3 if i >= 0 else -1, j + 2 if j >= 0 else -1) if k >= 0]
    return min(found) if found else None


def _section_end(head: bytes, include_blank: bool = False) -> int:
    """Where the header fields end: before the blank line (or after it, when asked)."""
    if head.endswith(b"\r\n\r\n") or head.endswith(b"\n\n") or head in (b"\r\n", b"\n"):
        if include_blank:
            return len(head)
        return len(head) - (2 if head.endswith(b"\r\n") else 1)
    return len(head)


def _unstuff(raw: bytes) -> bytes:
    """Undo dot-stuffing (RFC 5321 §4.5.2): a line starting with '..' starts with '.'."""
    out = raw.replace(b"\n..", b"\n.")
    return out[1:] if out[:2] == b".." else out
