"""What the file-format readers (`pcap`, `pcapng`) share: the record sink and the file tally.

A format reader walks the records of one file and hands each one to a *sink*:
`sink(buf, start, end, ts, link_type, frame_no)`, where `buf[start:end]` is the frame as
captured (FCS already removed), `ts` the timestamp in seconds and `frame_no` the 1-based
record number (Wireshark's frame number). Whatever the sink returns other than None is yielded.
Facts about the file itself (counts, time span, why it stopped) go into a `FileTally`.
No decoding of packet contents here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from analyzer.capture.segment import CaptureAnomaly

T = TypeVar("T")

RecordSink: TypeAlias = Callable[[bytes, int, int, float, int, int], T | None]
"""`(buf, start, end, ts, link_type, frame_no) -> value or None`."""


@dataclass(slots=True)
class FileTally:
    """Facts about one file learnt while reading it; the format reader fills it in."""

    format: str = "empty"
    """"pcap", "pcapng", or "empty" for a zero-byte file."""
    packets: int = 0
    """Records read so far: the last frame number."""
    first_ts: float | None = None
    """Timestamp of the first record that has one."""
    last_ts: float | None = None
    """Timestamp of the last record."""
    min_ts: float | None = None
    max_ts: float | None = None
    snaplen_cut: int = 0
    """Records shorter than their original length."""
    first_cut_frame: int = 0
    backwards: int = 0
    """Records whose timestamp is earlier than the one before."""
    first_backwards_frame: int = 0
    link_types: list[int] = field(default_factory=list)
    """Link types of the file (pcap) or of its interfaces (pcapng), distinct, in order seen."""
    ts_resolution: float = 1e-6
    """Finest timestamp unit of the file, in seconds."""
    snaplen: int = 0
    """Snapshot length from the file header or first interface (0: none declared)."""
    stop_kind: CaptureAnomaly | None = None
    """Why the file was not read to its end: TRUNCATED_RECORD or BAD_BLOCK, else None."""
    stop_detail: str = ""

    def stop(self, kind: CaptureAnomaly, detail: str) -> None:
        """Record why reading stopped before the end of the file."""
        self.stop_kind = kind
        self.stop_detail = detail

    def note_link_type(self, link_type: int) -> None:
        if link_type not in self.link_types:
            self.link_types.append(link_type)

    def note_times(
        self,
        count: int,
        first: float | None,
        last: float | None,
        lowest: float | None,
        highest: float | None,
    ) -> None:
        """Store the record count and time span a reader kept in local variables."""
        self.packets = count
        if first is not None:
            self.first_ts = first
            self.last_ts = last
            self.min_ts = lowest
            self.max_ts = highest
