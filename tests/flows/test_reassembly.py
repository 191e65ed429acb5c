"""One direction's reassembler on its own: its limits and its building blocks."""

from __future__ import annotations

import dataclasses

import pytest

from analyzer._common import Anomaly, Direction, FrameMarks, FrameRef
from analyzer.flows.events import (
    DirectionStats,
    EndKind,
    FlowAnomaly,
    PacketOrigin,
    StreamData,
    StreamEnd,
    StreamGap,
)
from analyzer.flows.reassembly import (
    HISTORY_BYTES,
    HISTORY_CHUNKS,
    MAX_WINDOW,
    SEQ_MASK,
    Reassembler,
    describe_conflict,
    new_stream_data,
)


class Out:
    """A reassembler wired to lists."""

    def __init__(self, base: int = 1_000, max_buffered: int = 1 << 20) -> None:
        self.data: list[StreamData] = []
        self.gaps: list[StreamGap] = []
        self.notes: list[Anomaly] = []
        self.fins: list[StreamEnd] = []
        self.stats = DirectionStats()
        self.asm = asm = Reassembler(self.stats, max_buffered)
        asm.on_data = self.data.append
        asm.on_gap = self.gaps.append
        asm.on_anomaly = self.notes.append
        asm.on_fin = self.fins.append
        asm.set_base(base)
        self.base = base
        self.frame_no = 0

    def push(self, offset: int, payload: bytes) -> FrameRef:
        self.frame_no += 1
        frame = FrameRef("t", self.frame_no)
        self.asm.push((self.base + offset) & SEQ_MASK, payload, len(payload), frame, 0.0)
        return frame

    def stream(self) -> bytes:
        return b"".join(d.data for d in self.data)


def fin_at(offset: int) -> StreamEnd:
    origin = PacketOrigin(64, 1, None)
    return StreamEnd(
        Direction.CLIENT_TO_SERVER, EndKind.FIN, offset, FrameRef("t", 99), 0.0, origin, origin
    )


def test_the_fast_stream_data_is_an_ordinary_equal_and_frozen_stream_data() -> None:
    frames = [FrameRef("c", 3, 1), FrameRef("c", 4, 1)]
    args = (
        Direction.SERVER_TO_CLIENT,
        7,
        b"abc",
        frames[0],
        1.5,
        FrameMarks([7, 8], frames, [1.5, 1.6]),
    )
    fast = new_stream_data(*args)
    slow = StreamData(*args)
    assert type(fast) is StreamData
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert tuple(getattr(fast, f.name) for f in dataclasses.fields(StreamData)) == args
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.offset = 8  # type: ignore[misc]


def test_a_conflict_detail_shows_only_the_span_that_differs() -> None:
    detail = describe_conflict(100, b"MAIL FROM:<a@b>", b"MAIL FROM:<x@y>")
    assert detail.startswith("3 of 15 overlapping bytes differ at stream offset 111:")
    assert "b'a@b' first, then b'x@y'" in detail


def test_a_conflict_detail_shortens_long_versions() -> None:
    detail = describe_conflict(0, b"A" * 500, b"B" * 500)
    assert "500 of 500" in detail
    assert len(detail) < 200 and "…" in detail


def test_the_history_keeps_the_last_64_kib_and_compares_only_within_it() -> None:
    out = Out()
    chunk = 1_000
    for i in range(200):
        out.push(i * chunk, bytes([i % 251]) * chunk)
    assert HISTORY_BYTES <= out.asm.history_bytes < HISTORY_BYTES + chunk
    out.push(199 * chunk, b"!" * chunk)  # recent and different: a conflict
    assert len(out.notes) == 1
    out.push(0, b"!" * chunk)  # long gone: cannot be compared
    assert len(out.notes) == 1
    assert out.stats.retransmissions == 2


def test_one_byte_segments_cannot_make_the_history_unbounded() -> None:
    out = Out()
    for i in range(HISTORY_CHUNKS + 500):
        out.push(i, b"x")
    assert len(out.asm.history) == HISTORY_CHUNKS
    assert out.asm.history_bytes == HISTORY_CHUNKS


def test_bytes_beyond_any_possible_window_are_not_stream_bytes() -> None:
    out = Out()
    out.push(0, b"start")
    out.push(5 + MAX_WINDOW, b"garbage")
    out.push(5, b"-end")
    assert out.stream() == b"start-end"
    assert out.asm.pending_bytes == 0
    out.asm.flush(0.0)
    assert out.gaps == []


def test_an_ignored_direction_keeps_nothing_counts_the_extent_and_still_releases_its_fin() -> None:
    out = Out()
    out.push(0, b"abc")
    out.asm.ignore()
    out.push(10, b"later")
    out.push(3, b"defg")
    assert out.data[-1].data == b"abc" and len(out.data) == 1
    assert out.asm.pending_bytes == 0 and not out.asm.history
    assert out.stats.bytes == 15
    out.asm.set_fin(fin_at(20))
    assert out.fins == []
    out.asm.flush(0.0)
    assert len(out.fins) == 1
    assert out.gaps == [] and out.notes == []


def test_a_fin_arriving_after_data_beyond_it_drops_that_data_with_an_anomaly() -> None:
    out = Out()
    out.push(0, b"ab")
    late = out.push(6, b"beyond")
    out.asm.set_fin(fin_at(4))
    (note,) = out.notes
    assert note.kind is FlowAnomaly.DATA_AFTER_FIN
    assert note.frames == (FrameRef("t", 99), late)
    assert out.asm.pending_bytes == 0
    out.push(2, b"cd")
    assert out.stream() == b"abcd"
    assert len(out.fins) == 1


def test_out_of_order_limit_counts_pending_bytes_not_segments() -> None:
    out = Out(max_buffered=10)
    out.push(5, b"12345")
    out.push(10, b"67890")
    assert out.gaps == []  # exactly at the limit
    out.push(15, b"!")
    assert [(g.offset, g.length) for g in out.gaps] == [(0, 5)]
    assert out.stream() == b"1234567890!"
    assert [n.kind for n in out.notes] == [FlowAnomaly.OUT_OF_ORDER_LIMIT]
