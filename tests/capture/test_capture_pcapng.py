"""pcapng files: sections, interfaces, timestamp resolutions, the three packet blocks, damage."""

from __future__ import annotations

import pytest

from analyzer.capture import CaptureAnomaly

from . import craft
from .conftest import Reader

BASE = 1_700_000_000


def test_sections_switch_byte_order_and_reset_the_interface_list(read: Reader) -> None:
    data = (
        craft.shb("<")
        + craft.idb(1, order="<")
        + craft.epb(craft.smtp_frame(seq=1), BASE * 10**6, order="<")
        + craft.shb(">")
        + craft.idb(101, order=">", tsresol=9)  # raw IP, nanoseconds
        + craft.epb(craft.ipv4(craft.tcp(seq=2)), (BASE + 1) * 10**9 + 5, order=">")
        + craft.shb("<")
        + craft.idb(113, order="<", tsresol=3)  # Linux cooked, milliseconds
        + craft.epb(craft.sll(craft.ipv4(craft.tcp(seq=3))), (BASE + 2) * 1000 + 250, order="<")
    )
    segments, capture = read(data, name="sections.pcapng")
    assert [(s.frame.frame_no, s.seq) for s in segments] == [(1, 1), (2, 2), (3, 3)]
    assert [s.ts for s in segments] == pytest.approx([BASE, BASE + 1 + 5e-9, BASE + 2.25], abs=1e-6)
    assert segments[1].src_mac is None
    assert segments[2].src_mac == craft.CLIENT_MAC
    info = capture.files[0]
    assert info.format == "pcapng"
    assert info.link_types == (1, 101, 113)
    assert info.ts_resolution == 1e-9


def test_interfaces_each_keep_their_link_type_resolution_and_offset(read: Reader) -> None:
    data = (
        craft.shb()
        + craft.idb(1, tsresol=6)
        + craft.idb(229, tsresol=0x80 | 20, tsoffset=BASE)  # raw IPv6, 2^-20 s, offset
        + craft.epb(craft.smtp_frame(seq=1), BASE * 10**6 + 500_000, iface=0)
        + craft.epb(craft.ipv6(craft.tcp(seq=2)), 3 * 2**20 + 2**19, iface=1)
        + craft.epb(craft.smtp_frame(seq=3), (BASE + 4) * 10**6, iface=0)
    )
    segments, capture = read(data, name="ifaces.pcapng")
    assert [s.seq for s in segments] == [1, 2, 3]
    assert [s.ts for s in segments] == pytest.approx([BASE + 0.5, BASE + 3.5, BASE + 4.0])
    assert segments[1].src == "2001:db8::1"
    assert capture.files[0].ts_resolution == pytest.approx(2**-20)


def test_nanosecond_timestamps_are_the_correctly_rounded_quotient(read: Reader) -> None:
    # 2**60-odd ticks are beyond a float's 53 bits: dividing the rounded count would give
    # ...246.5110822, one unit in the last place below the true quotient.
    ticks = 1_795_807_246_511_082_292
    data = craft.shb() + craft.idb(1, tsresol=9) + craft.epb(craft.smtp_frame(seq=1), ticks)
    (seg,), _ = read(data, name="ns.pcapng")
    assert seg.ts == ticks / 10**9 == 1795807246.5110824


def test_simple_and_obsolete_packet_blocks_are_frames_too(read: Reader) -> None:
    data = (
        craft.shb()
        + craft.idb(1, snaplen=200)
        + craft.epb(craft.smtp_frame(seq=1), BASE * 10**6)
        + craft.spb(craft.smtp_frame(seq=2))
        + craft.opb(craft.smtp_frame(seq=3), (BASE + 2) * 10**6)
    )
    segments, capture = read(data, name="blocks.pcapng")
    assert [(s.frame.frame_no, s.seq) for s in segments] == [(1, 1), (2, 2), (3, 3)]
    # An SPB carries no timestamp: it keeps the one before.
    assert [s.ts for s in segments] == pytest.approx([BASE, BASE, BASE + 2])
    assert capture.stats.anomalies == []


def test_simple_packet_block_is_cut_to_the_interface_snaplen(read: Reader) -> None:
    frame = craft.smtp_frame(b"Y" * 400)
    data = craft.shb() + craft.idb(1, snaplen=100) + craft.spb(frame[:100], origlen=len(frame))
    (seg,), capture = read(data, name="spb.pcapng")
    assert seg.payload_len == 400
    assert len(seg.payload) == 100 - 14 - 20 - 32
    assert capture.stats.snaplen_cut == 1


def test_other_blocks_and_comments_are_skipped_without_taking_a_frame_number(
    read: Reader,
) -> None:
    data = (
        craft.shb(options=craft.option(1, b"section comment") + craft.end_of_options())
        + craft.idb(1, name=b"eth0")
        + craft.nrb()
        + craft.epb(craft.smtp_frame(seq=1), BASE * 10**6, comment=b"a comment")
        + craft.custom_block()
        + craft.isb()
        + craft.block(0x0000000A, b"\x00" * 12)  # decryption secrets
        + craft.epb(craft.smtp_frame(seq=2), BASE * 10**6)
    )
    segments, capture = read(data, name="skip.pcapng")
    assert [(s.frame.frame_no, s.seq) for s in segments] == [(1, 1), (2, 2)]
    assert capture.stats.packets == 2
    assert capture.stats.anomalies == []


def test_frame_check_sequence_declared_by_the_interface_is_removed(read: Reader) -> None:
    frame = craft.ether(craft.ipv4(craft.tcp(payload=b"RSET\r\n"), total=0))
    data = craft.shb() + craft.idb(1, fcslen=4) + craft.epb(frame + b"\xaa\xbb\xcc\xdd", 0)
    (seg,), _ = read(data, name="fcs.pcapng")
    assert seg.payload == b"RSET\r\n"


@pytest.mark.parametrize(
    ("bad_length", "why"),
    [(13, "not a multiple of 4"), (8, "below the minimum"), (1 << 30, "absurdly large")],
)
def test_block_with_impossible_length_ends_the_file_and_keeps_what_was_read(
    read: Reader, bad_length: int, why: str
) -> None:
    good = craft.shb() + craft.idb(1) + craft.epb(craft.smtp_frame(seq=1), 0)
    bad = craft.block(6, b"\x00" * 40, length=bad_length)
    later = craft.epb(craft.smtp_frame(seq=2), 0)
    segments, capture = read(good + bad + later, name="bad.pcapng")
    assert [s.seq for s in segments] == [1], why
    assert capture.stats.anomaly_counts == {"bad_block": 1}
    assert capture.stats.anomalies[0].detail.startswith("bad.pcapng: ")


def test_block_whose_trailing_length_disagrees_ends_the_file(read: Reader) -> None:
    good = craft.shb() + craft.idb(1) + craft.epb(craft.smtp_frame(seq=1), 0)
    damaged = bytearray(craft.epb(craft.smtp_frame(seq=2), 0))
    damaged[-4:] = (len(damaged) + 4).to_bytes(4, "little")
    segments, capture = read(good + bytes(damaged), name="trailer.pcapng")
    assert [s.seq for s in segments] == [1]
    assert capture.stats.anomaly_counts == {"bad_block": 1}


def test_packet_block_naming_a_missing_interface_ends_the_file(read: Reader) -> None:
    data = (
        craft.shb()
        + craft.idb(1)
        + craft.epb(craft.smtp_frame(seq=1), 0)
        + craft.epb(craft.smtp_frame(seq=2), 0, iface=3)
    )
    segments, capture = read(data, name="iface.pcapng")
    assert [s.seq for s in segments] == [1]
    assert capture.stats.anomaly_counts == {"bad_block": 1}


@pytest.mark.parametrize("cut", [3, 11, 30, 60])
def test_file_cut_inside_the_last_block_keeps_the_blocks_before(read: Reader, cut: int) -> None:
    head = craft.shb() + craft.idb(1) + craft.epb(craft.smtp_frame(seq=1), 0)
    last = craft.epb(craft.smtp_frame(seq=2), 0)
    segments, capture = read(head + last[:cut], name="cut.pcapng")
    assert [s.seq for s in segments] == [1]
    assert capture.stats.truncated_records == 1
    (anomaly,) = capture.stats.anomalies
    assert anomaly.kind is CaptureAnomaly.TRUNCATED_RECORD
    assert anomaly.frames[0].frame_no == 1


def test_section_header_only_file_is_a_valid_capture_without_packets(read: Reader) -> None:
    segments, capture = read(craft.shb() + craft.idb(1), name="empty.pcapng")
    assert segments == []
    assert capture.files[0].first_ts is None
    assert capture.files[0].link_types == (1,)
    assert capture.stats.anomalies == []


def test_gzip_compressed_pcapng(read: Reader) -> None:
    data = craft.shb(">") + craft.idb(1, order=">") + craft.epb(craft.smtp_frame(), 0, order=">")
    segments, capture = read(data, name="x.pcapng.gz", compress=True)
    assert len(segments) == 1
    assert capture.files[0].compressed


def test_timestamps_of_a_64_bit_counter_use_both_halves(read: Reader) -> None:
    units = (BASE + 123) * 10**9 + 456  # needs more than 32 bits
    data = craft.shb() + craft.idb(1, tsresol=9) + craft.epb(craft.smtp_frame(), units)
    (seg,), capture = read(data, name="ts.pcapng")
    assert seg.ts == pytest.approx(BASE + 123 + 456e-9, abs=1e-6)
    assert capture.files[0].first_ts == seg.ts


def test_a_flood_of_interface_blocks_is_cut_off(
    read: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.capture import pcapng

    monkeypatch.setattr(pcapng, "MAX_INTERFACES", 2)
    data = craft.shb() + craft.idb(1) + craft.epb(craft.smtp_frame(seq=1), 0)
    data += craft.idb(1) + craft.idb(1) + craft.epb(craft.smtp_frame(seq=2), 0)
    segments, capture = read(data, name="idbs.pcapng")
    assert [s.seq for s in segments] == [1]
    assert capture.stats.anomaly_counts == {"bad_block": 1}
