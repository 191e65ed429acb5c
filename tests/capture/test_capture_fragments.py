"""IP fragments: rebuilt into one segment at the last fragment's frame, or reported incomplete."""

from __future__ import annotations

import itertools

import pytest

from analyzer._common import FrameRef
from analyzer.capture import CaptureAnomaly, CaptureStats
from analyzer.capture import fragments as frag_module
from analyzer.capture.decode import Decoder
from analyzer.capture.fragments import FragmentReassembler

from . import craft
from .conftest import Reader

TCP_SEGMENT = craft.tcp(seq=777, options=craft.ts_option(5, 6), payload=bytes(range(256)) * 8)


def pieces(data: bytes, size: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) pieces of `size` bytes (a multiple of 8), the last one shorter."""
    return [(off, data[off : off + size]) for off in range(0, len(data), size)]


def frags4(data: bytes, size: int, ident: int = 7, proto: int = 6) -> list[bytes]:
    parts = pieces(data, size)
    frames = []
    for i, (off, chunk) in enumerate(parts):
        more = 0x2000 if i < len(parts) - 1 else 0
        frames.append(
            craft.ether(craft.ipv4(chunk, ident=ident, frag=more | off // 8, proto=proto))
        )
    return frames


def frags6(data: bytes, size: int, ident: int = 7, nh: int = 6) -> list[bytes]:
    parts = pieces(data, size)
    return [
        craft.ether(
            craft.ipv6(craft.frag6(nh, off, i < len(parts) - 1, ident) + chunk, nh=44),
            ethertype=craft.ETH_IPV6,
        )
        for i, (off, chunk) in enumerate(parts)
    ]


def run(frames: list[bytes], times: list[float] | None = None) -> tuple[list, CaptureStats]:  # type: ignore[type-arg]
    stats = CaptureStats()
    decoder = Decoder("t", stats)
    out = []
    for n, frame in enumerate(frames, 1):
        ts = times[n - 1] if times else float(n)
        seg = decoder.decode(frame, 0, len(frame), ts, 1, n)
        if seg is not None:
            out.append(seg)
    decoder.finish()
    return out, stats


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_ipv4_fragments_in_any_order_rebuild_one_segment_at_the_last_frame(
    order: tuple[int, ...],
) -> None:
    frames = frags4(TCP_SEGMENT, 600)
    assert len(frames) == 4
    segments, stats = run([frames[i] for i in order])
    (seg,) = segments
    assert seg.frame == FrameRef("t", 4, 0)
    assert seg.seq == 777
    assert seg.payload == bytes(range(256)) * 8
    assert seg.payload_len == 2048
    assert (seg.tsval, seg.tsecr, seg.ip_id) == (5, 6, 7)
    assert (stats.ip_fragments, stats.fragments_reassembled, stats.tcp_segments) == (4, 1, 1)
    (note,) = stats.anomalies
    assert note.kind is CaptureAnomaly.IP_FRAGMENT
    assert [f.frame_no for f in note.frames] == [1, 2, 3, 4]


def test_ipv6_fragments_rebuild_and_carry_the_identification() -> None:
    frames = frags6(TCP_SEGMENT, 1024, ident=0x01020304)
    segments, stats = run(list(reversed(frames)))
    (seg,) = segments
    assert seg.payload == bytes(range(256)) * 8
    assert seg.ip_id == 0x01020304
    assert seg.frame.frame_no == len(frames)
    assert stats.fragments_reassembled == 1


def test_overlapping_fragments_keep_the_bytes_that_came_first() -> None:
    stats = CaptureStats()
    reasm = FragmentReassembler(stats)
    key = (4, b"\x01" * 4, b"\x02" * 4, 1)
    ref = FrameRef("t", 1)
    assert reasm.add(key, 0, True, b"A" * 16, 6, 0.0, ref) is None
    assert reasm.add(key, 8, True, b"B" * 16, 6, 0.0, ref) is None
    done = reasm.add(key, 24, False, b"C" * 8, 6, 0.0, ref)
    assert done is not None
    assert done.payload == b"A" * 16 + b"B" * 8 + b"C" * 8


def test_missing_fragment_becomes_an_incomplete_anomaly_at_the_end() -> None:
    frames = frags4(TCP_SEGMENT, 600)
    segments, stats = run([frames[0], craft.smtp_frame(seq=1), frames[2], frames[3]])
    assert [s.seq for s in segments] == [1]
    assert stats.ip_fragments == 3
    assert stats.fragments_reassembled == 0
    (anomaly,) = stats.anomalies
    assert anomaly.kind is CaptureAnomaly.FRAGMENT_INCOMPLETE
    assert [f.frame_no for f in anomaly.frames] == [1, 3, 4]
    assert "3 fragment(s)" in anomaly.detail


def test_fragments_older_than_the_timeout_are_given_up() -> None:
    first = frags4(TCP_SEGMENT, 600, ident=1)
    second = frags4(TCP_SEGMENT, 600, ident=2)
    late = frag_module.FRAGMENT_TIMEOUT + 10
    frames = [first[0], first[1], *second]
    times = [0.0, 1.0, late, late, late, late]
    segments, stats = run(frames, times)
    assert len(segments) == 1
    assert stats.anomaly_counts["fragment_incomplete"] == 1
    assert "within 60 s" in next(
        a.detail for a in stats.anomalies if a.kind is CaptureAnomaly.FRAGMENT_INCOMPLETE
    )


def test_non_tcp_fragments_are_rebuilt_and_counted_as_non_tcp() -> None:
    udp = b"\x00\x35\x00\x35" + b"\x00" * 4 + b"d" * 2000
    segments, stats = run(frags4(udp, 1480, proto=17))
    assert segments == []
    assert (stats.non_tcp, stats.fragments_reassembled, stats.ip_fragments) == (1, 1, 2)
    assert stats.anomalies == []


def test_fragment_reaching_past_65535_bytes_is_malformed() -> None:
    frame = craft.ether(craft.ipv4(b"x" * 100, frag=0x1FFF))
    segments, stats = run([frame])
    assert segments == []
    assert stats.malformed == 1
    assert stats.ip_fragments == 0


def test_memory_stays_bounded_under_a_flood_of_unfinished_datagrams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frag_module, "MAX_PENDING_DATAGRAMS", 50)
    stats = CaptureStats()
    reasm = FragmentReassembler(stats)
    ref = FrameRef("t", 1)
    for ident in range(500):
        reasm.add((4, b"a" * 4, b"b" * 4, ident), 0, True, b"x" * 8, 6, 0.0, ref)
        assert len(reasm._pending) <= 50
    assert stats.anomaly_counts["fragment_incomplete"] == 450
    reasm.flush()
    assert stats.anomaly_counts["fragment_incomplete"] == 500


def test_bytes_held_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frag_module, "MAX_PENDING_BYTES", 100_000)
    stats = CaptureStats()
    reasm = FragmentReassembler(stats)
    ref = FrameRef("t", 1)
    for ident in range(100):
        reasm.add((4, b"a" * 4, b"b" * 4, ident), 0, True, b"x" * 8000, 6, 0.0, ref)
        assert reasm._bytes <= 100_000
    assert stats.anomaly_counts["fragment_incomplete"] > 80


def test_conflicting_datagram_lengths_give_the_datagram_up() -> None:
    stats = CaptureStats()
    reasm = FragmentReassembler(stats)
    key = (4, b"a" * 4, b"b" * 4, 9)
    ref = FrameRef("t", 1)
    assert reasm.add(key, 16, False, b"x" * 8, 6, 0.0, ref) is None
    assert reasm.add(key, 32, False, b"x" * 8, 6, 0.0, ref) is None
    assert stats.anomaly_counts == {"fragment_incomplete": 1}


def test_fragments_of_one_datagram_are_told_apart_from_another_by_id_and_address() -> None:
    a = frags4(TCP_SEGMENT, 600, ident=1)
    b = frags4(craft.tcp(seq=5, payload=b"other" * 300), 600, ident=2)
    interleaved = [f for pair in itertools.zip_longest(a, b) for f in pair if f is not None]
    segments, stats = run(interleaved)
    assert sorted(s.seq for s in segments) == [5, 777]
    assert stats.fragments_reassembled == 2


def test_fragments_across_a_file_are_joined_in_a_capture(read: Reader) -> None:
    records = [craft.Rec(f) for f in frags4(TCP_SEGMENT, 1000)]
    records.insert(1, craft.Rec(craft.ether(b"\x00" * 28, ethertype=craft.ETH_ARP)))
    segments, capture = read(craft.pcap(records))
    (seg,) = segments
    assert seg.frame.frame_no == 4
    stats = capture.stats
    absorbed = stats.ip_fragments - stats.fragments_reassembled
    assert stats.packets == (
        stats.tcp_segments
        + stats.non_tcp
        + stats.non_ip
        + stats.unknown_link_packets
        + stats.malformed
        + absorbed
    )
