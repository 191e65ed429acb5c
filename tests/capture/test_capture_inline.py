"""The inline reader of Ethernet pcap files, the consumer hook and shards change nothing but speed:
the same segments, counters and anomalies as the general decoder, every segment offered with the
fields its `Segment` has, and every conversation read by exactly one shard."""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.capture import Capture, Segment, layout, open_capture, pcap, reader
from analyzer.capture.conversation import (
    Shard,
    fold_addresses,
    raw_key,
    shard_index,
    shard_of,
)
from analyzer.capture.decode import TakeFunction

from . import craft

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTS = ["192.0.2.1", "198.51.100.2", "203.0.113.9", "10.1.2.3"]
HOSTS6 = ["2001:db8::1", "2001:db8::25"]


def conversation_frame(
    src: str, dst: str, sport: int, dport: int, payload: bytes, flags: int, variant: str
) -> bytes:
    """One frame of a conversation, in one of the shapes captures show."""
    if variant == "ipv6":
        return craft.ether(
            craft.ipv6(
                craft.tcp(sport, dport, flags=flags, payload=payload),
                src=HOSTS6[HOSTS.index(src) % 2],
                dst=HOSTS6[HOSTS.index(dst) % 2 - 1],
            ),
            craft.ETH_IPV6,
        )
    options = craft.ts_option(5, 6) if variant in ("ts", "padded") else b""
    segment = craft.tcp(sport, dport, flags=flags, options=options, payload=payload)
    if variant == "ip-options":
        return craft.ether(craft.ipv4(segment, src, dst, options=b"\x94\x04\x00\x00"))
    if variant == "vlan":
        return craft.ether(craft.ipv4(segment, src, dst), vlans=((0x8100, 7),))
    if variant == "tso":
        return craft.ether(craft.ipv4(segment, src, dst, total=0))
    frame = craft.ether(craft.ipv4(segment, src, dst, frag=0 if variant == "no-df" else 0x4000))
    if variant == "padded":
        frame += b"\x00" * 9  # Ethernet padding or trailer after the IP datagram
    return frame


VARIANTS = ["plain", "ts", "padded", "ip-options", "vlan", "ipv6", "tso", "no-df"]

ODD_FRAMES = [
    craft.ether(craft.ipv4(b"\x00" * 30, proto=17)),  # UDP
    craft.ether(b"\x00" * 28, craft.ETH_ARP),
    craft.ether(craft.ipv4(craft.tcp(payload=b"z" * 100), frag=0x2000)),  # first fragment
    craft.ether(craft.ipv4(craft.tcp(payload=b"q"), version_ihl=0x46)),  # IHL beyond the data
    craft.ether(craft.ipv4(craft.tcp(payload=b"w", data_offset=15))),  # data offset too big
    craft.ether(craft.ipv4(craft.tcp(payload=b"e", data_offset=3))),  # data offset too small
    craft.ether(craft.ipv4(craft.tcp(payload=b"r" * 8), total=30)),  # total below TCP header
    b"\x01\x02\x03",  # shorter than an Ethernet header
]


@st.composite
def records(draw: st.DrawFn) -> list[craft.Rec]:
    """Frames of a few conversations in all shapes, odd frames, cuts and clock steps back."""
    out: list[craft.Rec] = []
    ts = 1_700_000_000.0
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        ts += draw(st.sampled_from([0.001, 0.5, -0.2]))
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            frame = draw(st.sampled_from(ODD_FRAMES))
        else:
            a, b = draw(st.permutations(HOSTS))[:2]
            ports = draw(st.sampled_from([(40000, 25), (25, 40000), (40001, 587), (80, 51000)]))
            frame = conversation_frame(
                a,
                b,
                *ports,
                draw(st.binary(max_size=60)),
                draw(st.sampled_from([0x10, 0x18, 0x02, 0x12, 0x11, 0x04])),
                draw(st.sampled_from(VARIANTS)),
            )
        cut = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=len(frame))))
        out.append(craft.Rec(frame if cut is None else frame[:cut], ts, len(frame)))
    return out


def written(data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pcap"
        path.write_bytes(data)
        yield path


def read(path: Path, **hooks: Any) -> tuple[list[Segment], Capture]:
    capture = open_capture([path], "f")
    return list(capture.segments(**hooks)), capture


def read_general(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Segment], Capture]:
    """The same file through `pcap.read_records` and `Decoder.decode`, never the inline path."""
    with monkeypatch.context() as patch:
        patch.setattr(reader, "LINKTYPE_ETHERNET", -1)
        return read(path)


@FAST
@given(records())
def test_inline_reading_gives_exactly_what_the_general_decoder_gives(
    recs: list[craft.Rec],
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for path in written(craft.pcap(recs)):
            fast, fast_capture = read(path)
            general, general_capture = read_general(path, monkeypatch)
            assert fast == general
            assert fast_capture.stats == general_capture.stats
            assert fast_capture.files == general_capture.files


@pytest.mark.parametrize("cut", [1, 10, 17, 40, 75])
def test_a_file_cut_inside_a_record_reads_the_same_either_way(
    cut: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = [craft.smtp_frame(b"x" * n) for n in (10, 200, 30)]
    data = craft.pcap([craft.Rec(f) for f in frames])[:-cut]
    for path in written(data):
        fast, fast_capture = read(path)
        general, general_capture = read_general(path, monkeypatch)
        assert fast == general and fast_capture.stats == general_capture.stats
        assert fast_capture.stats.truncated_records == 1


@FAST
@given(records())
def test_every_segment_is_offered_first_with_the_fields_of_its_segment(
    recs: list[craft.Rec],
) -> None:
    offered: list[tuple[Any, ...]] = []

    def refuse(*fields: Any) -> bool:
        offered.append(fields)
        return False

    for path in written(craft.pcap(recs)):
        plain, _ = read(path)
        segments, capture = read(path, take=TakeFunction(refuse))
    assert segments == plain
    assert len(offered) == len(segments) == capture.stats.tcp_segments
    for fields, seg in zip(offered, segments, strict=True):
        key, ts, frame_no, file_no, flags, seq, ack, payload, payload_len, ttl, ip_id, mac = fields
        assert key == raw_key(seg.src, seg.sport, seg.dst, seg.dport)
        assert (ts, frame_no, file_no) == (seg.ts, seg.frame.frame_no, seg.frame.file_no)
        assert (flags, seq, ack, payload, payload_len) == (
            seg.flags,
            seg.seq,
            seg.ack,
            seg.payload,
            seg.payload_len,
        )
        assert (ttl, ip_id, mac) == (seg.ttl, seg.ip_id, seg.src_mac)


INLINE_FIELDS = [
    (layout.ETHERNET, 0, "ethertype"),
    *(
        (layout.IPV4, layout.ETH_HEADER_LEN, name)
        for name in (
            "version_ihl",
            "total_length",
            "identification",
            "flags_fragment_offset",
            "ttl",
            "protocol",
            "source",
            "destination",
        )
    ),
    *(
        (layout.TCP, layout.ETH_HEADER_LEN + layout.IPV4_MIN_HEADER_LEN, name)
        for name in (
            "source_port",
            "destination_port",
            "sequence",
            "acknowledgment",
            "data_offset",
            "flags",
        )
    ),
]
"""What the inline reader returns, in order: (header, where it starts in the frame, field)."""
INLINE_LEN = layout.ETH_HEADER_LEN + layout.IPV4_MIN_HEADER_LEN + layout.TCP_FLAGS + 1


@given(st.binary(min_size=INLINE_LEN, max_size=2 * INLINE_LEN), st.data())
def test_the_bytewise_readers_read_what_struct_reads(data: bytes, draw: st.DataObject) -> None:
    # The compiled build reads the record header and the inline fields byte by byte; both
    # readings are the fields of `layout`'s tables, each read on its own with its format.
    p = draw.draw(st.integers(min_value=0, max_value=len(data) - INLINE_LEN))
    by_table = tuple(
        struct.unpack_from("!" + h.field(name).format, data, p + at + h.field(name).offset)[0]
        for h, at, name in INLINE_FIELDS
    )
    assert pcap._ether_ipv4_tcp_bytewise(data, p) == pcap._ETHER_IPV4_TCP(data, p) == by_table
    for order, big_endian in (("<", False), (">", True)):
        expected = tuple(
            struct.unpack_from(order + f.format, data, p + f.offset)[0]
            for f in layout.PCAP_RECORD.fields
        )
        assert struct.unpack_from(order + "IIII", data, p) == expected
        assert pcap._record_header_bytewise(data, p, big_endian) == expected


def test_a_segment_whose_options_run_past_the_snaplen_is_offered_with_no_payload() -> None:
    frame = craft.ether(
        craft.ipv4(craft.tcp(options=craft.ts_option(5, 6), payload=b"m" * 40, flags=0x18))
    )
    cut = 14 + 20 + 20 + 4  # Ethernet, IPv4, the fixed TCP header and 4 bytes of options
    offered: list[tuple[Any, ...]] = []

    def refuse(*fields: Any) -> bool:
        offered.append(fields)
        return False

    for path in written(craft.pcap([craft.Rec(frame[:cut], 1.0, len(frame))])):
        segments, _ = read(path, take=TakeFunction(refuse))
    [(*_, payload, payload_len, _ttl, _ip_id, _mac)] = offered
    assert (payload, payload_len) == (b"", 40)
    assert [(seg.payload, seg.payload_len) for seg in segments] == [(b"", 40)]


@FAST
@given(records(), st.data())
def test_what_the_consumer_takes_becomes_no_segment_but_is_still_counted(
    recs: list[craft.Rec], data: st.DataObject
) -> None:
    for path in written(craft.pcap(recs)):
        everything, whole = read(path)
        choices = data.draw(st.lists(st.booleans(), min_size=len(everything)))
        taken = iter(choices)

        def take(*fields: Any, answers: Iterator[bool] = taken) -> bool:
            return next(answers)

        left, capture = read(path, take=TakeFunction(take))
    assert left == [seg for seg, took in zip(everything, choices, strict=False) if not took]
    assert capture.stats == whole.stats


def endpoints(seg: Segment) -> frozenset[tuple[str, int]]:
    return frozenset({(seg.src, seg.sport), (seg.dst, seg.dport)})


@FAST
@given(records(), st.integers(min_value=1, max_value=4))
def test_each_conversation_is_read_by_exactly_one_shard(recs: list[craft.Rec], count: int) -> None:
    for path in written(craft.pcap(recs)):
        everything, whole = read(path)
        parts: list[list[Segment]] = []
        for index in range(count):
            skipped: list[tuple[int, int]] = []

            def hear(ts: float, file_no: int, frame_no: int, into: list[Any] = skipped) -> float:
                into.append((file_no, frame_no))
                return float("-inf")  # every one, please

            segments, capture = read(path, shard=Shard(index, count), skipped=hear)
            parts.append(segments)
            assert capture.stats == whole.stats
            mine = {(s.frame.file_no, s.frame.frame_no) for s in segments}
            assert sorted(mine | set(skipped)) == sorted(
                (s.frame.file_no, s.frame.frame_no) for s in everything
            )
    merged = sorted((seg for part in parts for seg in part), key=lambda s: s.frame)
    assert merged == everything
    owner: dict[frozenset[tuple[str, int]], int] = {}
    for index, part in enumerate(parts):
        for seg in part:
            assert owner.setdefault(endpoints(seg), index) == index
            assert shard_of(seg.src, seg.sport, seg.dst, seg.dport, count) == index


@given(
    st.sampled_from(HOSTS + HOSTS6),
    st.sampled_from(HOSTS + HOSTS6),
    st.integers(min_value=0, max_value=65535),
    st.integers(min_value=0, max_value=65535),
    st.integers(min_value=1, max_value=8),
)
def test_a_conversation_has_one_shard_whichever_way_it_is_named(
    a: str, b: str, sport: int, dport: int, count: int
) -> None:
    if (":" in a) != (":" in b):
        b = a
    assert shard_of(a, sport, b, dport, count) == shard_of(b, dport, a, sport, count)
    key = raw_key(a, sport, b, dport)
    assert len(key) == (36 if ":" in a else 12)
    assert shard_index(fold_addresses(key[:-4]), sport, dport, count) in range(count)


def test_shards_share_out_many_conversations_evenly() -> None:
    counts = [0, 0]
    for n in range(4000):
        counts[
            shard_of(f"10.0.{n // 250}.{n % 250}", 1024 + n * 7 % 60000, "192.0.2.25", 25, 2)
        ] += 1
    assert min(counts) > 0.45 * sum(counts)


@FAST
@given(records(), st.floats(min_value=0.0, max_value=2.0))
def test_skipped_segments_are_reported_again_only_from_the_time_asked(
    recs: list[craft.Rec], wait: float
) -> None:
    heard: list[float] = []

    def hear(ts: float, file_no: int, frame_no: int) -> float:
        heard.append(ts)
        return ts + wait

    for path in written(craft.pcap(recs)):
        everything, _ = read(path)
        read(path, shard=Shard(1, 2), skipped=hear)
    others = [s.ts for s in everything if shard_of(s.src, s.sport, s.dst, s.dport, 2) == 0]
    due = float("-inf")
    expected = []
    for ts in others:
        if ts >= due:
            expected.append(ts)
            due = ts + wait
    assert heard == expected


def test_a_shard_outside_its_count_is_refused() -> None:
    with pytest.raises(ValueError):
        Shard(2, 2)
