"""Classic pcap files: each magic and byte order, FCS bits, records cut short or by snaplen."""

from __future__ import annotations

import itertools

import pytest

from analyzer.capture import CaptureAnomaly

from . import craft
from .conftest import Reader

TS = 1_700_000_000.123456


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_every_magic_and_byte_order_reads_the_same_segments(
    read: Reader, order: str, nano: bool
) -> None:
    records = [
        craft.Rec(craft.smtp_frame(b"EHLO a\r\n", seq=10), TS),
        craft.Rec(craft.smtp_frame(b"MAIL FROM:<x@y>\r\n", seq=18), TS + 0.000001),
    ]
    segments, capture = read(craft.pcap(records, order=order, nano=nano))
    assert [(s.seq, s.payload) for s in segments] == [
        (10, b"EHLO a\r\n"),
        (18, b"MAIL FROM:<x@y>\r\n"),
    ]
    assert segments[0].ts == pytest.approx(TS, abs=1e-6)
    assert segments[1].ts - segments[0].ts == pytest.approx(1e-6, abs=2e-7)
    info = capture.files[0]
    assert info.format == "pcap"
    assert info.ts_resolution == (1e-9 if nano else 1e-6)
    assert info.link_types == (1,)
    assert info.snaplen == 65535
    assert info.packets == 2


def test_nanosecond_timestamps_keep_sub_microsecond_steps(read: Reader) -> None:
    base = 1_700_000_000.0
    records = [craft.Rec(craft.smtp_frame(seq=i), base + i * 250e-9) for i in range(4)]
    segments, _ = read(craft.pcap(records, nano=True))
    steps = [b.ts - a.ts for a, b in itertools.pairwise(segments)]
    assert steps == pytest.approx([250e-9] * 3, abs=1e-7)


def test_fcs_signalled_in_the_link_type_field_is_removed(read: Reader) -> None:
    frame = craft.ether(craft.ipv4(craft.tcp(payload=b"DATA\r\n")) + b"\x00" * 20)  # padded frame
    with_fcs = frame + b"\xde\xad\xbe\xef"
    # LT_FCS_LENGTH_PRESENT (0x04000000), FCS length 2 sixteen-bit words (0x2 << 28).
    field = 1 | 0x04000000 | (2 << 28)
    segments, capture = read(craft.pcap([craft.Rec(with_fcs)], link_field=field))
    assert capture.files[0].link_types == (1,)
    assert segments[0].payload == b"DATA\r\n"
    assert capture.stats.malformed == 0


def test_fcs_removal_gives_raw_ip_its_true_end(read: Reader) -> None:
    # Raw IP with a wrong total length of 0 (segmentation offload): the frame end decides,
    # so the 4 FCS bytes would otherwise be taken for payload.
    packet = craft.ipv4(craft.tcp(payload=b"QUIT\r\n"), total=0)
    field = 101 | 0x04000000 | (2 << 28)
    segments, _ = read(craft.pcap([craft.Rec(packet + b"\x01\x02\x03\x04")], link_field=field))
    assert segments[0].payload == b"QUIT\r\n"
    assert segments[0].payload_len == 6


def test_empty_file_is_a_valid_capture_without_packets(read: Reader) -> None:
    segments, capture = read(b"")
    assert segments == []
    assert capture.stats.packets == 0
    assert capture.files[0].format == "empty"
    assert capture.stats.anomalies == []


@pytest.mark.parametrize("order", ["<", ">"])
def test_header_only_file_is_a_valid_capture_without_packets(read: Reader, order: str) -> None:
    segments, capture = read(craft.pcap([], order=order))
    assert segments == []
    assert capture.files[0].first_ts is None
    assert capture.files[0].packets == 0
    assert capture.stats.anomalies == []


@pytest.mark.parametrize("cut", [1, 8, 15, 16, 17, 40])
def test_file_cut_inside_the_last_record_keeps_every_record_before(read: Reader, cut: int) -> None:
    records = [craft.Rec(craft.smtp_frame(seq=n)) for n in (1, 2, 3)]
    data = craft.pcap(records)
    last_len = 16 + len(records[-1].data)
    segments, capture = read(data[: len(data) - last_len + cut])
    assert [s.seq for s in segments] == [1, 2]
    assert capture.stats.truncated_records == 1
    assert capture.stats.packets == 2
    (anomaly,) = capture.stats.anomalies
    assert anomaly.kind is CaptureAnomaly.TRUNCATED_RECORD
    assert "capture.pcap" in anomaly.detail
    assert anomaly.frames[0].frame_no == 2


def test_record_header_claiming_an_absurd_length_stops_the_file(read: Reader) -> None:
    good = craft.pcap([craft.Rec(craft.smtp_frame(seq=1))])
    bogus = b"\x00" * 8 + (3925868813).to_bytes(4, "little") * 2 + b"x" * 100
    segments, capture = read(good + bogus)
    assert [s.seq for s in segments] == [1]
    assert capture.stats.anomaly_counts == {"bad_block": 1}
    assert capture.stats.packets == 1


def test_record_cut_by_snaplen_still_yields_its_segment_with_the_bytes_present(
    read: Reader,
) -> None:
    body = b"X" * 1000
    full = craft.smtp_frame(body)
    cut = full[:96]
    segments, capture = read(craft.pcap([craft.Rec(cut, origlen=len(full))], snaplen=96))
    (seg,) = segments
    assert seg.payload_len == 1000
    assert seg.payload == body[: len(seg.payload)]
    assert 0 < len(seg.payload) < 1000
    assert seg.tsval == 7
    assert capture.stats.snaplen_cut == 1
    assert capture.stats.anomaly_counts == {"snaplen_cut": 1}
    assert capture.files[0].snaplen == 96


def test_frame_numbers_count_every_record_including_non_tcp_and_malformed(
    read: Reader,
) -> None:
    arp = craft.ether(b"\x00" * 28, ethertype=craft.ETH_ARP)
    udp = craft.ether(craft.ipv4(b"\x00" * 8 + b"dns", proto=17))
    broken = craft.ether(craft.ipv4(b"", version_ihl=0x43))
    records = [
        craft.Rec(arp),
        craft.Rec(craft.smtp_frame(seq=1)),
        craft.Rec(udp),
        craft.Rec(broken),
        craft.Rec(craft.smtp_frame(seq=2)),
    ]
    segments, capture = read(craft.pcap(records))
    assert [(s.frame.frame_no, s.seq) for s in segments] == [(2, 1), (5, 2)]
    stats = capture.stats
    assert (stats.packets, stats.tcp_segments, stats.non_tcp, stats.non_ip, stats.malformed) == (
        5,
        2,
        1,
        1,
        1,
    )


def test_gzip_is_recognised_by_its_magic_not_its_name(read: Reader) -> None:
    data = craft.pcap([craft.Rec(craft.smtp_frame(seq=n)) for n in range(3)])
    segments, capture = read(data, name="no-suffix.pcap", compress=True)
    assert [s.seq for s in segments] == [0, 1, 2]
    assert capture.files[0].compressed is True
    plain, capture2 = read(data, name="plain.pcap.gz")
    assert [s.seq for s in plain] == [0, 1, 2]
    assert capture2.files[0].compressed is False


def test_gzip_stream_cut_short_keeps_what_was_decompressed(write, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gzip

    from analyzer.capture import open_capture

    data = craft.pcap([craft.Rec(craft.smtp_frame(b"x" * 500, seq=n)) for n in range(200)])
    packed = gzip.compress(data)
    path = write(packed[: len(packed) // 2], name="cut.pcap.gz")
    capture = open_capture([path], "t")
    segments = list(capture.segments())
    assert 0 < len(segments) < 200
    assert [s.seq for s in segments] == list(range(len(segments)))
    assert capture.stats.truncated_records == 1
    (anomaly,) = [a for a in capture.stats.anomalies if a.kind is CaptureAnomaly.TRUNCATED_RECORD]
    assert "cut.pcap.gz" in anomaly.detail


def test_time_going_backwards_is_noted_once_per_file_with_a_count(read: Reader) -> None:
    times = [10.0, 11.0, 10.5, 12.0, 9.0]
    segments, capture = read(
        craft.pcap(
            [craft.Rec(craft.smtp_frame(seq=i), 1_700_000_000 + t) for i, t in enumerate(times)]
        )
    )
    assert len(segments) == 5
    (anomaly,) = capture.stats.anomalies
    assert anomaly.kind is CaptureAnomaly.TIME_WENT_BACKWARDS
    assert anomaly.detail.startswith("capture.pcap: 2 frame(s)")
    assert anomaly.frames[0].frame_no == 3
    assert capture.stats.first_ts == 1_700_000_009.0
    assert capture.stats.last_ts == 1_700_000_012.0
    assert capture.files[0].first_ts == 1_700_000_010.0
    assert capture.files[0].last_ts == 1_700_000_009.0
