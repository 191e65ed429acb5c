"""Link layers, IPv4/IPv6 and TCP decoding of single frames."""

from __future__ import annotations

import dataclasses

import pytest

from analyzer._common import FrameRef
from analyzer.capture import ACK, PSH, SYN, CaptureAnomaly, CaptureStats, Segment
from analyzer.capture.decode import Decoder, new_segment

from . import craft


def decode(frame: bytes, link_type: int = 1) -> tuple[Segment | None, CaptureStats]:
    stats = CaptureStats()
    decoder = Decoder("t", stats)
    # Decode from the middle of a larger buffer, as the readers do.
    buf = b"\xee" * 7 + frame + b"\xee" * 5
    seg = decoder.decode(buf, 7, 7 + len(frame), 1.5, link_type, 42)
    decoder.finish()
    return seg, stats


def only_segment(frame: bytes, link_type: int = 1) -> Segment:
    seg, stats = decode(frame, link_type)
    assert seg is not None, stats.anomalies
    assert stats.tcp_segments == 1
    return seg


PACKET4 = craft.ipv4(craft.tcp(sport=1025, dport=25, seq=7, ack=9, payload=b"HELO x\r\n"))
PACKET6 = craft.ipv6(craft.tcp(sport=1025, dport=587, seq=7, payload=b"HELO x\r\n"))


def test_ethernet_ipv4_tcp_fields() -> None:
    frame = craft.ether(
        craft.ipv4(
            craft.tcp(
                sport=40001,
                dport=25,
                seq=0xFFFFFFF0,
                ack=12345,
                flags=ACK | PSH,
                window=501,
                options=craft.ts_option(0xDEADBEEF, 77),
                payload=b"DATA\r\n",
            ),
            src="10.0.0.1",
            dst="10.0.0.2",
            ttl=63,
            ident=999,
        )
    )
    seg = only_segment(frame)
    assert seg == Segment(
        frame=FrameRef("t", 42, 0),
        ts=1.5,
        src="10.0.0.1",
        dst="10.0.0.2",
        sport=40001,
        dport=25,
        seq=0xFFFFFFF0,
        ack=12345,
        flags=ACK | PSH,
        window=501,
        payload=b"DATA\r\n",
        payload_len=6,
        ttl=63,
        ip_id=999,
        src_mac=craft.CLIENT_MAC,
        tsval=0xDEADBEEF,
        tsecr=77,
    )


def test_syn_options_mss_window_scale_and_timestamps() -> None:
    frame = craft.ether(craft.ipv4(craft.tcp(flags=SYN, options=craft.syn_options(1460, 7, 1234))))
    seg = only_segment(frame)
    assert (seg.mss, seg.wscale, seg.tsval, seg.tsecr) == (1460, 7, 1234, 0)
    assert seg.payload == b""
    assert seg.payload_len == 0


def test_damaged_tcp_options_are_read_as_far_as_they_make_sense() -> None:
    # MSS, then an option whose length runs past the header: parsing stops there.
    options = bytes((2, 4, 0x05, 0xB4, 8, 30, 0, 0))
    seg = only_segment(craft.ether(craft.ipv4(craft.tcp(options=options, payload=b"x"))))
    assert seg.mss == 1460
    assert seg.tsval is None
    assert seg.payload == b"x"


@pytest.mark.parametrize(
    "vlans",
    [
        ((0x8100, 10),),
        ((0x88A8, 100), (0x8100, 10)),
        ((0x9100, 100), (0x8100, 10)),
        ((0x8100, 1), (0x8100, 2), (0x8100, 3)),
    ],
    ids=["802.1Q", "802.1ad", "QinQ-9100", "triple"],
)
def test_vlan_tags_of_every_kind_are_skipped(vlans: tuple[tuple[int, int], ...]) -> None:
    seg = only_segment(craft.ether(PACKET4, vlans=vlans))
    assert seg.payload == b"HELO x\r\n"
    assert seg.src_mac == craft.CLIENT_MAC


def test_ethernet_padding_is_not_payload() -> None:
    # A 54-byte ACK is padded to the 60-byte Ethernet minimum with non-zero junk.
    frame = craft.ether(craft.ipv4(craft.tcp(flags=ACK))) + b"\x01\x02\x03\x04\x05\x06"
    seg = only_segment(frame)
    assert seg.payload == b""
    assert seg.payload_len == 0


def test_ipv4_options_move_the_tcp_header() -> None:
    router_alert = bytes((0x94, 4, 0, 0))
    record_route = bytes((7, 11, 4)) + b"\x00" * 8
    frame = craft.ether(
        craft.ipv4(craft.tcp(seq=5, payload=b"NOOP\r\n"), options=router_alert + record_route)
    )
    seg = only_segment(frame)
    assert (seg.seq, seg.payload) == (5, b"NOOP\r\n")


def test_ipv4_total_length_zero_from_segmentation_offload_uses_the_frame() -> None:
    frame = craft.ether(craft.ipv4(craft.tcp(payload=b"A" * 3000), total=0))
    seg = only_segment(frame)
    assert seg.payload_len == 3000
    assert seg.payload == b"A" * 3000


def test_ipv6_address_text_is_compressed() -> None:
    packet = craft.ipv6(craft.tcp(), src="2001:db8:0:0:0:0:0:1", dst="::ffff:192.0.2.1")
    seg = only_segment(craft.ether(packet, ethertype=craft.ETH_IPV6))
    assert seg.src == "2001:db8::1"
    assert seg.dst == "::ffff:192.0.2.1"
    assert seg.ip_id is None
    assert seg.ttl == 64


def test_ipv6_extension_headers_are_walked_to_tcp() -> None:
    chain = (
        craft.ext_header(43, units=0)  # hop-by-hop → routing
        + craft.ext_header(51, units=1)  # routing → AH
        + craft.ah_header(60)  # AH → destination options
        + craft.ext_header(44, units=2)  # destination options → fragment
        + craft.frag6(6, 0, False, 0xABCDEF)  # atomic fragment → TCP
    )
    tcp = craft.tcp(seq=99, payload=b"STARTTLS\r\n")
    packet = craft.ipv6(chain + tcp, nh=0)
    seg = only_segment(craft.ether(packet, ethertype=craft.ETH_IPV6))
    assert (seg.seq, seg.payload, seg.payload_len) == (99, b"STARTTLS\r\n", 10)
    assert seg.ip_id == 0xABCDEF


def test_ipv6_payload_without_tcp_counts_as_non_tcp() -> None:
    seg, stats = decode(craft.ether(craft.ipv6(b"\x00" * 8, nh=58), ethertype=craft.ETH_IPV6))
    assert seg is None
    assert stats.non_tcp == 1
    seg, stats = decode(craft.ether(craft.ipv6(b"", nh=59), ethertype=craft.ETH_IPV6))
    assert stats.non_tcp == 1


def test_linux_cooked_v1_and_v2_use_a_six_byte_link_address_as_mac() -> None:
    seg = only_segment(craft.sll(PACKET4), link_type=113)
    assert seg.src_mac == craft.CLIENT_MAC
    seg = only_segment(craft.sll2(PACKET6, protocol=craft.ETH_IPV6), link_type=276)
    assert seg.src_mac == craft.CLIENT_MAC
    assert seg.dport == 587
    seg = only_segment(craft.sll2(PACKET4, addr=b""), link_type=276)
    assert seg.src_mac is None


def test_linux_cooked_with_a_vlan_protocol_is_unwrapped() -> None:
    seg = only_segment(craft.sll(b"\x00\x0a\x08\x00" + PACKET4, protocol=0x8100), 113)
    assert seg.payload == b"HELO x\r\n"


@pytest.mark.parametrize("link_type", [101, 12, 14])
def test_raw_ip_link_types_pick_the_version_from_the_first_nibble(link_type: int) -> None:
    assert only_segment(PACKET4, link_type).sport == 1025
    assert only_segment(PACKET6, link_type).dport == 587


def test_ipv4_and_ipv6_link_types() -> None:
    assert only_segment(PACKET4, 228).src == "192.0.2.1"
    assert only_segment(PACKET6, 229).src == "2001:db8::1"


@pytest.mark.parametrize(
    ("family", "order", "packet"),
    [
        (2, "<", PACKET4),
        (2, ">", PACKET4),
        (24, "<", PACKET6),
        (28, "<", PACKET6),
        (30, ">", PACKET6),
    ],
)
def test_null_link_reads_the_family_in_either_byte_order(
    family: int, order: str, packet: bytes
) -> None:
    seg = only_segment(craft.null(packet, family, order), link_type=0)
    assert seg.payload == b"HELO x\r\n"
    assert seg.src_mac is None


def test_loop_link_family_is_big_endian() -> None:
    assert only_segment(craft.null(PACKET6, 30, ">"), link_type=108).dport == 587
    seg, stats = decode(craft.null(PACKET4, 2, "<"), link_type=108)
    assert seg is None
    assert stats.non_ip == 1


@pytest.mark.parametrize(
    ("frame", "link_type"),
    [
        (craft.ether(b"\x00" * 28, ethertype=craft.ETH_ARP), 1),
        (craft.ether(b"\xaa\xaa\x03" + b"\x00" * 40, ethertype=46), 1),  # 802.3 length field
        (craft.sll(b"\x00" * 28, protocol=craft.ETH_ARP), 113),
        (craft.null(PACKET4, 7, "<"), 0),  # AF_ value of neither IP version
    ],
    ids=["arp", "llc", "sll-arp", "null-af7"],
)
def test_non_ip_frames_are_counted_not_decoded(frame: bytes, link_type: int) -> None:
    seg, stats = decode(frame, link_type)
    assert seg is None
    assert stats.non_ip == 1
    assert stats.anomalies == []


def test_unknown_link_type_is_one_anomaly_per_type_with_a_count() -> None:
    stats = CaptureStats()
    decoder = Decoder("t", stats)
    for frame_no in (1, 2, 3):
        assert decoder.decode(PACKET4, 0, len(PACKET4), 0.0, 147, frame_no) is None
    assert decoder.decode(PACKET4, 0, len(PACKET4), 0.0, 105, 4) is None
    decoder.finish()
    assert stats.unknown_link_packets == 4
    assert [(a.kind, a.detail, a.frames[0].frame_no) for a in stats.anomalies] == [
        (CaptureAnomaly.UNKNOWN_LINK_TYPE, "link type 147 is not decoded: 3 frame(s) skipped", 1),
        (CaptureAnomaly.UNKNOWN_LINK_TYPE, "link type 105 is not decoded: 1 frame(s) skipped", 4),
    ]


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"\x00" * 10, "shorter than Ethernet"),
        (craft.ether(b"\x00\x01", vlans=())[:13], "cut Ethernet header"),
        (craft.ether(b"", ethertype=0x8100) + b"\x00", "cut VLAN tag"),
        (craft.ether(craft.ipv4(b"")[:12]), "cut IPv4 header"),
        (craft.ether(craft.ipv4(craft.tcp(), version_ihl=0x44)), "IHL below 5"),
        (craft.ether(craft.ipv4(craft.tcp(), version_ihl=0x65)), "IPv4 header saying version 6"),
        (craft.ether(craft.ipv4(craft.tcp(), total=12)), "total length below header"),
        (craft.ether(craft.ipv4(craft.tcp(), options=b"\x01" * 40)[:40]), "cut IPv4 options"),
        (craft.ether(craft.ipv4(craft.tcp()[:12])), "TCP header longer than IP payload"),
        (craft.ether(craft.ipv4(craft.tcp(data_offset=4))), "TCP data offset below 5"),
        (craft.ether(craft.ipv4(craft.tcp(data_offset=15))), "TCP data offset past the end"),
        (craft.ether(craft.ipv6(craft.tcp())[:30], ethertype=craft.ETH_IPV6), "cut IPv6"),
        (
            craft.ether(craft.ipv6(craft.ext_header(6), nh=0, plen=4), ethertype=craft.ETH_IPV6),
            "extension header longer than the payload",
        ),
        (craft.ipv4(craft.tcp())[:0], "empty raw frame"),
    ],
)
def test_malformed_frames_are_counted_with_an_anomaly(frame: bytes, why: str) -> None:
    link_type = 101 if why == "empty raw frame" else 1
    seg, stats = decode(frame, link_type)
    assert seg is None, why
    assert stats.malformed == 1, why
    (anomaly,) = stats.anomalies
    assert anomaly.kind is CaptureAnomaly.MALFORMED_PACKET
    assert anomaly.frames == (FrameRef("t", 42, 0),)


def test_raw_ip_with_a_version_other_than_4_or_6_is_malformed() -> None:
    seg, stats = decode(b"\x50" + PACKET4[1:], 101)
    assert seg is None
    assert stats.malformed == 1


def test_tcp_header_cut_by_snaplen_is_malformed_but_options_cut_still_yield() -> None:
    full = craft.ipv4(craft.tcp(options=craft.ts_option(1, 2), payload=b"z" * 50))
    seg, stats = decode(full[:30], 101)
    assert seg is None
    assert stats.malformed == 1
    assert "snaplen" in stats.anomalies[0].detail
    seg = only_segment(full[:46], 101)  # fixed TCP header present, options half cut
    assert seg.payload == b""
    assert seg.payload_len == 50
    assert seg.tsval is None


def test_address_cache_holds_many_pairs_without_mixing_them_up() -> None:
    stats = CaptureStats()
    decoder = Decoder("t", stats)
    for i in range(10_000):
        src = f"10.{i >> 8 & 255}.{i & 255}.1"
        packet = craft.ipv4(craft.tcp(), src=src, dst="192.0.2.9")
        seg = decoder.decode(packet, 0, len(packet), 0.0, 101, i + 1)
        assert seg is not None
        assert (seg.src, seg.dst) == (src, "192.0.2.9")


def test_new_segment_builds_exactly_what_the_dataclass_constructor_builds() -> None:
    # A distinct value of the declared type for every field.
    values: dict[str, object] = {
        f.name: i for i, f in enumerate(dataclasses.fields(Segment)) if f.name != "frame"
    }
    values.update(src="192.0.2.1", dst="192.0.2.2", ts=1.5, payload=b"abc", src_mac=b"\x02" * 6)
    fast = new_segment(FrameRef("c", 1, 2), **values)  # type: ignore[arg-type]
    slow = Segment(FrameRef("c", 1, 2), **values)  # type: ignore[arg-type]
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.seq = 1  # type: ignore[misc]


def test_decoded_frame_refs_are_ordinary_frame_refs() -> None:
    seg = only_segment(craft.smtp_frame())
    assert seg.frame == FrameRef("t", 42, 0)
    assert hash(seg.frame) == hash(FrameRef("t", 42, 0))
    assert seg.frame < FrameRef("t", 43, 0)
    assert str(seg.frame) == "t#42"
