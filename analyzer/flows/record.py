"""Keep the reassembled bytes of a flow's two directions, with the frame behind every byte range.

Used only when two captures are compared byte by byte; the single-capture path keeps no payload.
Memory is capped per direction (`MAX_RECORDED_BYTES`); past the cap only lengths are counted.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final

from analyzer._common import Direction, FrameRef

MAX_RECORDED_BYTES: Final = 2 << 20
"""Bytes kept per direction of one flow; the rest is counted but not kept."""


@dataclass(slots=True)
class StreamRecord:
    """One direction of one flow: bytes by stream offset and which frame carried them."""

    data: bytearray = field(default_factory=bytearray)
    base: int = 0
    """Stream offset of data[0] (the first delivered byte; 0 unless the capture began midstream)."""
    chunk_offsets: list[int] = field(default_factory=list)
    chunk_frames: list[FrameRef] = field(default_factory=list)
    chunk_ts: list[float] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    """(offset, length) of bytes never captured; they are zero-filled in `data`."""
    truncated: bool = False
    length: int = 0
    """Stream length including gaps and what was beyond the cap."""

    def add(self, offset: int, data: bytes, frame: FrameRef, ts: float) -> None:
        if not self.chunk_offsets and not self.data:
            self.base = offset
        self.length = max(self.length, offset + len(data) - self.base)
        if self.truncated:
            return
        room = MAX_RECORDED_BYTES - len(self.data)
        if room <= 0:
            self.truncated = True
            return
        self.chunk_offsets.append(offset)
        self.chunk_frames.append(frame)
        self.chunk_ts.append(ts)
        self.data += data[:room]
        if len(data) > room:
            self.truncated = True

    def add_gap(self, offset: int, length: int) -> None:
        if not self.chunk_offsets and not self.data:
            self.base = offset
        self.gaps.append((offset, length))
        self.length = max(self.length, offset + length - self.base)
        if self.truncated:
            return
        fill = min(length, MAX_RECORDED_BYTES - len(self.data))
        self.data += bytes(fill)
        if fill < length:
            self.truncated = True

    def frame_at(self, offset: int) -> tuple[FrameRef | None, float | None]:
        """The frame (and its timestamp) that carried the byte at stream offset `offset`."""
        i = bisect.bisect_right(self.chunk_offsets, offset) - 1
        if i < 0:
            return None, None
        return self.chunk_frames[i], self.chunk_ts[i]

    def in_gap(self, offset: int) -> bool:
        return any(start <= offset < start + length for start, length in self.gaps)


@dataclass(slots=True)
class StreamPair:
    """Both directions of a flow."""

    client_to_server: StreamRecord = field(default_factory=StreamRecord)
    server_to_client: StreamRecord = field(default_factory=StreamRecord)

    def of(self, direction: Direction) -> StreamRecord:
        if direction is Direction.CLIENT_TO_SERVER:
            return self.client_to_server
        return self.server_to_client
