"""Split one direction's bytes into lines, keeping each line's terminator, offset and frames.

A line ends at LF; a CR right before the LF makes the terminator CRLF, otherwise the terminator
is a bare LF. Partial lines are kept across feeds. At most `max_line` bytes of a line are kept:
the rest of a longer line is counted (so offsets and lengths stay exact) but not stored, which
bounds memory whatever the peer sends. This module knows nothing about commands or replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from analyzer._common import FrameRef

LF: Final = 0x0A
CR: Final = 0x0D
NUL: Final = 0x00


@dataclass(slots=True, init=False)
class Line:
    """One line of a stream, as the peer sent it (not changed once made).

    One is made per line, so its constructor is written out (see docs/DESIGN.md, "The compiled
    build"); the dataclass gives it equality and a readable repr.
    """

    content: bytes
    """The line without its terminator; at most `max_line` bytes of it."""
    terminator: bytes
    """b'\\r\\n', b'\\n', or b'' when the stream ended inside the line."""
    offset: int
    """Stream offset of the line's first byte."""
    length: int
    """Length of the whole line without its terminator, kept or not."""
    frame: FrameRef | None
    """Frame holding the first byte."""
    last_frame: FrameRef | None
    """Frame holding the last byte (the terminator's, if any)."""
    ts: float
    end_ts: float

    def __init__(
        self,
        content: bytes,
        terminator: bytes,
        offset: int,
        length: int,
        frame: FrameRef | None,
        last_frame: FrameRef | None,
        ts: float,
        end_ts: float,
    ) -> None:
        self.content = content
        self.terminator = terminator
        self.offset = offset
        self.length = length
        self.frame = frame
        self.last_frame = last_frame
        self.ts = ts
        self.end_ts = end_ts

    @property
    def truncated(self) -> bool:
        """Part of the line was not kept."""
        return self.length > len(self.content)

    @property
    def wire_length(self) -> int:
        """Octets the line took on the wire, terminator included."""
        return self.length + len(self.terminator)

    @property
    def end_offset(self) -> int:
        """Stream offset just after the line."""
        return self.offset + self.length + len(self.terminator)


class LineReader:
    """Cuts lines out of successive chunks of one direction's stream."""

    __slots__ = ("_buf", "_frame", "_last_cr", "_length", "_max_line", "_offset", "_ts")

    def __init__(self, max_line: int) -> None:
        self._max_line = max(1, max_line)
        self._buf = bytearray()
        self._length = 0
        """Bytes of the partial line seen so far (kept or not)."""
        self._last_cr = False
        self._offset = 0
        self._frame: FrameRef | None = None
        self._ts = 0.0

    @property
    def buffered(self) -> int:
        """Bytes held for the partial line (never more than `max_line`)."""
        return len(self._buf)

    @property
    def pending(self) -> int:
        """Length of the partial line seen so far, kept or not; 0 at a line start."""
        return self._length

    def head(self, n: int) -> bytes:
        """The first `n` bytes of the partial line (fewer if fewer arrived)."""
        return bytes(self._buf[:n])

    def take(
        self,
        data: bytes,
        pos: int,
        end: int,
        offset: int,
        frame: FrameRef | None,
        ts: float,
    ) -> tuple[Line | None, int]:
        """Cut the next line out of `data[pos:end]`; `offset` is the stream offset of `data[0]`.

        Returns the line and the position after it, or (None, end) when `data[pos:end]` held no
        line end: those bytes are then kept as the start of a partial line.
        """
        nl = data.find(b"\n", pos, end)
        if nl < 0:
            self._append(data, pos, end, offset, frame, ts)
            return None, end
        max_line = self._max_line
        if not self._length:
            cr = nl > pos and data[nl - 1] == CR
            length = nl - pos - cr
            content = data[pos : pos + length] if length <= max_line else data[pos : pos + max_line]
            line = Line(
                content,
                b"\r\n" if cr else b"\n",
                offset + pos,
                length,
                frame,
                frame,
                ts,
                ts,
            )
            return line, nl + 1
        cr = data[nl - 1] == CR if nl > pos else self._last_cr
        self._keep(data, pos, nl)
        length = self._length + (nl - pos) - cr
        kept = bytes(self._buf)
        line = Line(
            kept[:length] if len(kept) > length else kept,
            b"\r\n" if cr else b"\n",
            self._offset,
            length,
            self._frame,
            frame,
            self._ts,
            ts,
        )
        self._reset()
        return line, nl + 1

    def flush(self, frame: FrameRef | None, ts: float) -> Line | None:
        """The partial line as a line without terminator (the stream ended), or None."""
        if not self._length:
            return None
        kept = bytes(self._buf)
        line = Line(kept, b"", self._offset, self._length, self._frame, frame, self._ts, ts)
        self._reset()
        return line

    def drop(self) -> int:
        """Forget the partial line (a gap broke it); returns how many bytes it had."""
        dropped = self._length
        self._reset()
        return dropped

    def detach(self) -> tuple[bytes, int, FrameRef | None, float] | None:
        """Hand the partial line's bytes to another parser: (bytes, offset, frame, ts).

        None when there is no partial line or when part of it was not kept.
        """
        if not self._length:
            return None
        if self._length > len(self._buf):
            self._reset()
            return None
        taken = (bytes(self._buf), self._offset, self._frame, self._ts)
        self._reset()
        return taken

    def _append(
        self, data: bytes, pos: int, end: int, offset: int, frame: FrameRef | None, ts: float
    ) -> None:
        if pos >= end:
            return
        if not self._length:
            self._offset = offset + pos
            self._frame = frame
            self._ts = ts
        self._keep(data, pos, end)
        self._length += end - pos
        self._last_cr = data[end - 1] == CR

    def _keep(self, data: bytes, pos: int, end: int) -> None:
        room = self._max_line - len(self._buf)
        if room > 0:
            self._buf += data[pos : min(end, pos + room)]

    def _reset(self) -> None:
        self._buf.clear()
        self._length = 0
        self._last_cr = False
