"""Invariants: hostile or damaged input never raises, and chunking never changes the result."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.capture import Capture, CaptureStats, Segment, open_capture, source
from analyzer.capture.decode import SUPPORTED_LINK_TYPES, Decoder
from analyzer.errors import CaptureError

from . import craft, zoo

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_bytes(data: bytes, name: str = "h.pcap") -> tuple[list[Segment], Capture]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        capture = open_capture([path], "h")
        return list(capture.segments()), capture


def counted_once(stats: CaptureStats) -> bool:
    absorbed = stats.ip_fragments - stats.fragments_reassembled
    return stats.packets == (
        stats.tcp_segments
        + stats.non_tcp
        + stats.non_ip
        + stats.unknown_link_packets
        + stats.malformed
        + absorbed
    )


FRAMES = [
    craft.smtp_frame(b"MAIL FROM:<a@b>\r\n"),
    craft.ether(craft.ipv4(craft.tcp(options=craft.syn_options(1460, 7, 1), flags=2))),
    craft.ether(craft.ipv6(craft.ext_header(6) + craft.tcp(payload=b"x" * 40), nh=0), 0x86DD),
    craft.ether(
        craft.ipv4(craft.tcp(payload=b"y" * 60), options=b"\x94\x04\x00\x00"), vlans=((0x8100, 3),)
    ),
    craft.ether(craft.ipv4(b"\x00" * 30, proto=17)),
    craft.ether(craft.ipv4(craft.tcp(payload=b"z" * 100), frag=0x2000)),
]


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(FRAMES), st.integers(min_value=0, max_value=200)),
        max_size=12,
    ),
    st.integers(min_value=0, max_value=3000),
)
def test_pcap_with_arbitrary_per_record_truncation_never_raises(
    records: list[tuple[bytes, int]], file_cut: int
) -> None:
    recs = [craft.Rec(frame[:cut], origlen=len(frame)) for frame, cut in records]
    data = craft.pcap(recs)
    data = data[: max(24, len(data) - file_cut)]
    segments, capture = read_bytes(data)
    stats = capture.stats
    assert stats.packets <= len(records)
    assert len(segments) == stats.tcp_segments <= stats.packets
    assert counted_once(stats)
    for seg in segments:
        assert len(seg.payload) <= seg.payload_len


@FAST
@given(st.binary(max_size=300), st.sampled_from(sorted(SUPPORTED_LINK_TYPES | {147})))
def test_decoder_never_raises_on_arbitrary_frames(frame: bytes, link_type: int) -> None:
    stats = CaptureStats()
    decoder = Decoder("h", stats)
    seg = decoder.decode(frame, 0, len(frame), 0.0, link_type, 1)
    decoder.finish()
    assert (seg is not None) == (stats.tcp_segments == 1)
    if seg is not None:
        assert len(seg.payload) <= seg.payload_len


@FAST
@given(st.binary(min_size=1, max_size=400), st.data())
def test_decoder_never_raises_on_damaged_valid_frames(noise: bytes, data: st.DataObject) -> None:
    frame = bytearray(data.draw(st.sampled_from(FRAMES)))
    at = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    frame[at : at + len(noise)] = noise[: len(frame) - at]
    stats = CaptureStats()
    decoder = Decoder("h", stats)
    decoder.decode(bytes(frame), 0, len(frame), 0.0, 1, 1)
    decoder.finish()


ZOO = zoo.build()


@FAST
@given(st.integers(min_value=0, max_value=len(ZOO) - 1), st.binary(min_size=1, max_size=8))
def test_damaged_pcapng_never_raises_beyond_a_header_error(at: int, garbage: bytes) -> None:
    damaged = ZOO[:at] + garbage + ZOO[at + len(garbage) :]
    try:
        segments, capture = read_bytes(damaged, "z.pcapng")
    except CaptureError:
        assert at < len(craft.shb()), "only a damaged first section header may be refused"
        return
    assert counted_once(capture.stats)
    assert len(segments) == capture.stats.tcp_segments


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize("compress", [False, True])
def test_chunk_size_does_not_change_what_is_read(
    monkeypatch: pytest.MonkeyPatch, chunk: int, compress: bool
) -> None:
    import gzip

    pcap = craft.pcap([craft.Rec(f) for f in FRAMES * 3])
    files = {"a.pcapng": ZOO, "b.pcap": pcap}
    expected = {}
    for name, data in files.items():
        segs, cap = read_bytes(gzip.compress(data) if compress else data, name)
        expected[name] = (segs, cap.stats.packets, cap.stats.anomaly_counts)
    monkeypatch.setattr(source, "CHUNK_SIZE", chunk)
    for name, data in files.items():
        segs, cap = read_bytes(gzip.compress(data) if compress else data, name)
        assert (segs, cap.stats.packets, cap.stats.anomaly_counts) == expected[name]


def test_memory_does_not_grow_with_the_number_of_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    monkeypatch.setattr(source, "CHUNK_SIZE", 64 * 1024)
    frame = craft.smtp_frame(b"x" * 1000)
    data = craft.pcap([craft.Rec(frame)] * 3000)  # 3.3 MB, fifty chunks
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.pcap"
        path.write_bytes(data)
        capture = open_capture([path], "m")
        tracemalloc.start()
        count = sum(1 for _ in capture.segments())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == 3000
    assert peak < 400_000, peak
