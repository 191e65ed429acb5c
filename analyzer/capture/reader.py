"""Open a capture (one file, or a rotation set read as one) and stream its TCP segments.

`open_capture` checks every file up front (readable, known magic, usable header) and raises
`CaptureError` for one that is not. The files of a rotation set (tcpdump -C/-W/-G) are put in
the order of their first packet's timestamp, not their names, since a wrapped ring buffer's
names do not sort in time order. `Capture.segments()` then reads the files in that order and
decodes each frame; gaps and overlaps between consecutive files, cut-short files and the like
become anomalies in `Capture.stats`. Decoding itself lives in `decode`, the formats in `pcap`
and `pcapng`; classic pcap of Ethernet, the common case, is read and decoded in one loop
(`fast`). `segments()` can read one shard of the conversations only, and can offer every
segment to a consumer before a `Segment` is built (`Decoder`'s hooks).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from analyzer._common import FrameRef
from analyzer.capture import pcap, pcapng
from analyzer.capture.conversation import Shard
from analyzer.capture.decode import LINKTYPE_ETHERNET, Decoder, SegmentTaker, Skipped
from analyzer.capture.records import FileTally, RecordSink, T
from analyzer.capture.segment import CaptureAnomaly, Segment
from analyzer.capture.source import Source
from analyzer.capture.stats import CaptureStats
from analyzer.errors import CaptureError, UsageError

PathLike = str | os.PathLike[str]
"""A capture file's name, as `open` takes it."""

FILE_GAP_THRESHOLD: Final = 1.0
"""Seconds between one file's last packet and the next file's first beyond which the gap is
reported: a rotation set written by one capture process follows on without pause."""
PROBE_RECORDS: Final = 1000
"""Records read at open time, at most, to find a file's first timestamp."""

PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"
OTHER_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; decompress it first"),
    (b"\x04\x22\x4d\x18", "lz4-compressed; decompress it first"),
    (b"\xfd\x37\x7a\x58", "xz-compressed; decompress it first"),
    (b"BZh", "bzip2-compressed; decompress it first"),
)
"""Magics of wrappers that are not read, for a more helpful error than "bad magic"."""

CaptureFormat = Literal["pcap", "pcapng", "empty"]


@dataclass(frozen=True, slots=True)
class CaptureFile:
    """One file of a capture, as far as it has been read."""

    path: Path
    first_ts: float | None
    """Timestamp of the file's first packet (its place in the rotation set); None if none."""
    last_ts: float | None
    """Timestamp of the last packet; None until `segments()` has read the file."""
    packets: int | None
    """Records in the file; None until `segments()` has read the file."""
    link_types: tuple[int, ...]
    """Link type (pcap) or the interfaces' link types (pcapng): at open time those declared
    before the first packet, after `segments()` all of them."""
    format: CaptureFormat
    ts_resolution: float
    """Finest timestamp unit, in seconds (1e-6, 1e-9, ...)."""
    snaplen: int
    """Snapshot length from the header or first interface; 0 when not declared."""
    compressed: bool
    """The file is gzip-compressed."""


class Capture:
    """The files of one capture point, in time order, and what reading them found."""

    __slots__ = ("capture_id", "files", "stats")

    def __init__(self, capture_id: str, files: tuple[CaptureFile, ...]) -> None:
        self.capture_id = capture_id
        self.files = files
        """In time order; entries are updated (packets, last_ts) as `segments()` reads them."""
        self.stats = CaptureStats()
        """Counters of the current or latest `segments()` pass; final once it is exhausted."""

    def segments(
        self,
        *,
        shard: Shard | None = None,
        skipped: Skipped | None = None,
        take: SegmentTaker | None = None,
    ) -> Iterator[Segment]:
        """Every TCP segment of every file, in file order then record order.

        With `shard`, only the segments of that shard's conversations (the others are reported
        to `skipped`); with `take`, only those the consumer did not take (see `Decoder`).
        `stats` counts taken and skipped segments as TCP segments.

        Each call reads the files again and starts a fresh `stats`. Raises CaptureError only if
        a file can no longer be opened or its header changed since `open_capture`.
        """
        stats = CaptureStats()
        self.stats = stats
        decoder = Decoder(self.capture_id, stats, shard=shard, skipped=skipped, take=take)
        previous: tuple[int, CaptureFile] | None = None
        try:
            for file_no, info in enumerate(self.files):
                decoder.file_no = file_no
                if previous is not None:
                    self._check_continuity(previous[0], previous[1], file_no, info)
                tally = FileTally()
                with Source(info.path) as source:
                    records = _records(source, decoder.decode, tally, decoder)
                    try:
                        yield from records
                    finally:
                        previous = (file_no, self._account(file_no, info, tally))
        finally:
            decoder.finish()

    def _account(self, file_no: int, info: CaptureFile, tally: FileTally) -> CaptureFile:
        """Fold one file's tally into the stats and the file list; return the updated entry."""
        stats = self.stats
        stats.packets += tally.packets
        stats.snaplen_cut += tally.snaplen_cut
        stats.note_time_span(tally.min_ts, tally.max_ts)
        name = info.path.name
        if tally.snaplen_cut:
            snaplen = f" (snaplen {tally.snaplen})" if tally.format == "pcap" else ""
            stats.add_anomaly(
                CaptureAnomaly.SNAPLEN_CUT,
                f"{name}: {tally.snaplen_cut} frame(s) captured shorter than sent{snaplen}; "
                f"the first is frame {tally.first_cut_frame}",
                (self._frame(tally.first_cut_frame, file_no),),
            )
        if tally.backwards:
            stats.add_anomaly(
                CaptureAnomaly.TIME_WENT_BACKWARDS,
                f"{name}: {tally.backwards} frame(s) timestamped earlier than the frame before; "
                f"the first is frame {tally.first_backwards_frame}",
                (self._frame(tally.first_backwards_frame, file_no),),
            )
        if tally.stop_kind is not None:
            if tally.stop_kind is CaptureAnomaly.TRUNCATED_RECORD:
                stats.truncated_records += 1
            stats.add_anomaly(
                tally.stop_kind,
                f"{name}: {tally.stop_detail}",
                (self._frame(tally.packets, file_no),) if tally.packets else (),
                tally.last_ts,
            )
        updated = replace(
            info,
            last_ts=tally.last_ts,
            packets=tally.packets,
            link_types=tuple(tally.link_types),
            ts_resolution=tally.ts_resolution,
        )
        files = list(self.files)
        files[file_no] = updated
        self.files = tuple(files)
        return updated

    def _check_continuity(
        self, prev_no: int, prev: CaptureFile, file_no: int, info: CaptureFile
    ) -> None:
        if prev.last_ts is None or info.first_ts is None or not prev.packets:
            return
        delta = info.first_ts - prev.last_ts
        frames = (self._frame(prev.packets, prev_no), self._frame(1, file_no))
        if delta > FILE_GAP_THRESHOLD:
            self.stats.add_anomaly(
                CaptureAnomaly.FILE_GAP,
                f"{delta:.3f} s without packets between the end of {prev.path.name} "
                f"and the start of {info.path.name}",
                frames,
                prev.last_ts,
            )
        elif delta < 0:
            self.stats.add_anomaly(
                CaptureAnomaly.FILE_OVERLAP,
                f"{info.path.name} starts {-delta:.3f} s before the last packet of "
                f"{prev.path.name}",
                frames,
                info.first_ts,
            )

    def _frame(self, frame_no: int, file_no: int) -> FrameRef:
        return FrameRef(self.capture_id, frame_no, file_no)


def open_capture(paths: Sequence[PathLike], capture_id: str) -> Capture:
    """Check every file of a capture and order them by their first packet's timestamp.

    Raises CaptureError naming the first file that is missing, unreadable, a directory, not a
    pcap/pcapng file (plain or gzip) or of an unsupported version. Files without packets are
    valid and go last.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise UsageError("no capture files given")
    files = [_inspect(Path(os.fspath(p))) for p in paths]
    files.sort(key=lambda f: (f.first_ts is None, f.first_ts or 0.0, str(f.path)))
    return Capture(capture_id, tuple(files))


def _probe(buf: bytes, start: int, end: int, ts: float, link_type: int, frame_no: int) -> bool:
    return True


def _inspect(path: Path) -> CaptureFile:
    tally = FileTally()
    with Source(path) as source:
        records = _records(source, _probe, tally)
        try:
            for count, _ in enumerate(records, 1):
                if tally.first_ts is not None or count >= PROBE_RECORDS:
                    break
        finally:
            records.close()
        return CaptureFile(
            path=path,
            first_ts=tally.first_ts,
            last_ts=None,
            packets=None,
            link_types=tuple(tally.link_types),
            format=_format(tally.format),
            ts_resolution=tally.ts_resolution,
            snaplen=tally.snaplen,
            compressed=source.compressed,
        )


def _format(name: str) -> CaptureFormat:
    if name == "pcap":
        return "pcap"
    if name == "pcapng":
        return "pcapng"
    return "empty"


def _records(
    source: Source, sink: RecordSink[T], tally: FileTally, decoder: Decoder | None = None
) -> Generator[T | Segment, None, None]:
    """Check the file's magic and header, then return its record iterator.

    With `decoder` (whose `decode` is `sink`), the plain IPv4/TCP frames of an Ethernet pcap
    file are decoded inline (`pcap.read_records`).
    Raises CaptureError here, before any record is read, if the file cannot be used.
    """
    path = source.path
    chunks = source.chunks
    buf = chunks.refill(b"", 0, pcap.FILE_HEADER_LEN)
    if not buf:
        if chunks.error is not None:
            raise CaptureError(path, f"cannot read: {chunks.error}")
        tally.format = "empty"
        return _nothing()
    magic = buf[:4]
    if len(magic) < 4:
        raise CaptureError(path, f"too short to be a capture file ({len(buf)} bytes)")
    if pcap.magic_kind(magic) is not None:
        header = pcap.parse_header(buf, path)
        inline = decoder if header.link_type == LINKTYPE_ETHERNET else None
        return pcap.read_records(chunks, buf, header, sink, tally, inline)
    if magic == PCAPNG_MAGIC:
        pcapng.check_first_section(buf, path)
        return pcapng.read_records(chunks, buf, sink, tally)
    wrapped = " inside gzip" if source.compressed else ""
    if pcap.is_kuznetzov(magic):
        raise CaptureError(path, f"modified (Kuznetzov) pcap format{wrapped} is not supported")
    for prefix, what in OTHER_MAGICS:
        if magic.startswith(prefix):
            raise CaptureError(path, f"file is {what}")
    if chunks.error is not None:
        raise CaptureError(path, f"cannot read: {chunks.error}")
    raise CaptureError(path, f"not a pcap or pcapng file{wrapped} (magic 0x{magic.hex()})")


def _nothing() -> Generator[T, None, None]:
    yield from ()
