"""open_capture: checking files up front, rotation sets in time order, gaps and overlaps."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from analyzer._common import FrameRef
from analyzer.capture import CaptureAnomaly, open_capture
from analyzer.errors import CaptureError, UsageError

from . import craft

Writer = Callable[..., Path]
T0 = 1_700_000_000.0


def ring_file(start: float, count: int, first_seq: int) -> bytes:
    """A rotation file: `count` packets 0.1 s apart, ARP first so frame numbers skip one."""
    records = [craft.Rec(craft.ether(b"\x00" * 28, ethertype=craft.ETH_ARP), start)]
    records += [
        craft.Rec(craft.smtp_frame(seq=first_seq + i), start + 0.1 * (i + 1)) for i in range(count)
    ]
    return craft.pcap(records)


def test_rotation_set_is_read_in_first_packet_order_not_name_order(write: Writer) -> None:
    # A wrapped ring buffer: trace2 holds the oldest packets, then trace0, then trace1.
    paths = [
        write(ring_file(T0 + 1.0, 3, 100), "trace0.pcap"),
        write(ring_file(T0 + 1.4, 3, 200), "trace1.pcap"),
        write(ring_file(T0 + 0.6, 3, 0), "trace2.pcap"),
    ]
    capture = open_capture(paths, "client")
    assert [f.path.name for f in capture.files] == ["trace2.pcap", "trace0.pcap", "trace1.pcap"]
    segments = list(capture.segments())
    assert [s.seq for s in segments] == [0, 1, 2, 100, 101, 102, 200, 201, 202]
    assert [s.frame for s in segments[:4]] == [
        FrameRef("client", 2, 0),
        FrameRef("client", 3, 0),
        FrameRef("client", 4, 0),
        FrameRef("client", 2, 1),
    ]
    assert str(segments[-1].frame) == "client[2]#4"
    assert capture.stats.packets == 12
    assert capture.stats.anomalies == []
    assert [f.packets for f in capture.files] == [4, 4, 4]
    assert capture.files[0].last_ts == pytest.approx(T0 + 0.9)
    assert capture.stats.first_ts == pytest.approx(T0 + 0.6)
    assert capture.stats.last_ts == pytest.approx(T0 + 1.7)


def test_gap_between_rotation_files_is_an_anomaly_citing_both_frames(write: Writer) -> None:
    paths = [
        write(ring_file(T0, 2, 0), "a.pcap"),
        write(ring_file(T0 + 30.0, 2, 10), "b.pcap"),
    ]
    capture = open_capture(paths, "c")
    list(capture.segments())
    (gap,) = capture.stats.anomalies
    assert gap.kind is CaptureAnomaly.FILE_GAP
    assert gap.frames == (FrameRef("c", 3, 0), FrameRef("c", 1, 1))
    assert gap.detail.startswith("29.800 s without packets between the end of a.pcap")


def test_overlapping_rotation_files_are_an_anomaly(write: Writer) -> None:
    paths = [
        write(ring_file(T0, 10, 0), "a.pcap"),
        write(ring_file(T0 + 0.5, 2, 10), "b.pcap"),
    ]
    capture = open_capture(paths, "c")
    list(capture.segments())
    (overlap,) = capture.stats.anomalies
    assert overlap.kind is CaptureAnomaly.FILE_OVERLAP
    assert overlap.detail == "b.pcap starts 0.500 s before the last packet of a.pcap"


def test_rotation_set_may_mix_formats_and_compression(write: Writer) -> None:
    ng = craft.shb() + craft.idb(1) + craft.epb(craft.smtp_frame(seq=50), int((T0 + 0.5) * 1e6))
    paths = [
        write(ng, "second.pcapng.gz", compress=True),
        write(ring_file(T0, 2, 0), "first.pcap"),
    ]
    capture = open_capture(paths, "c")
    assert [(f.format, f.compressed) for f in capture.files] == [
        ("pcap", False),
        ("pcapng", True),
    ]
    assert [s.seq for s in capture.segments()] == [0, 1, 50]


def test_files_without_packets_go_last(write: Writer) -> None:
    paths = [
        write(b"", "empty.pcap"),
        write(craft.pcap([]), "header-only.pcap"),
        write(ring_file(T0, 1, 0), "data.pcap"),
    ]
    capture = open_capture(paths, "c")
    assert [f.path.name for f in capture.files] == ["data.pcap", "empty.pcap", "header-only.pcap"]
    assert [s.seq for s in capture.segments()] == [0]


def test_a_single_path_string_is_one_file(write: Writer) -> None:
    path = write(ring_file(T0, 1, 0))
    capture = open_capture(str(path), "c")
    assert len(capture.files) == 1


def test_segments_can_be_read_again_with_fresh_stats(write: Writer) -> None:
    capture = open_capture([write(ring_file(T0, 3, 0))], "c")
    first = list(capture.segments())
    stats = capture.stats
    second = list(capture.segments())
    assert first == second
    assert capture.stats is not stats
    assert capture.stats.packets == stats.packets == 4


def test_stopping_early_still_accounts_for_what_was_read(write: Writer) -> None:
    capture = open_capture([write(ring_file(T0, 50, 0))], "c")
    for seg in capture.segments():
        if seg.seq == 9:
            break
    assert capture.stats.tcp_segments == 10
    assert capture.stats.packets == 11


def test_stats_invariant_every_record_is_counted_once(write: Writer) -> None:
    records = [
        craft.Rec(craft.smtp_frame()),
        craft.Rec(craft.ether(craft.ipv4(b"\x00" * 8, proto=17))),
        craft.Rec(craft.ether(b"\x00" * 28, ethertype=craft.ETH_ARP)),
        craft.Rec(b"\x00" * 5),
    ]
    capture = open_capture([write(craft.pcap(records))], "c")
    list(capture.segments())
    s = capture.stats
    assert s.packets == 4
    assert (s.tcp_segments, s.non_tcp, s.non_ip, s.malformed) == (1, 1, 1, 1)


# ---- errors: one line, naming the file ----


def one_line_error(paths: list[Path]) -> CaptureError:
    with pytest.raises(CaptureError) as caught:
        open_capture(paths, "c")
    assert "\n" not in str(caught.value)
    return caught.value


def test_missing_file_is_an_error_naming_it(tmp_path: Path, write: Writer) -> None:
    good = write(ring_file(T0, 1, 0))
    error = one_line_error([good, tmp_path / "nope.pcap"])
    assert error.path == tmp_path / "nope.pcap"
    assert str(error) == f"{tmp_path / 'nope.pcap'}: no such file"


def test_directory_is_an_error(tmp_path: Path) -> None:
    error = one_line_error([tmp_path])
    assert "is a directory" in str(error)


def test_bad_magic_is_an_error_showing_the_magic(write: Writer) -> None:
    error = one_line_error([write(b"GET / HTTP/1.1\r\n\r\n", "page.pcap")])
    assert error.problem == "not a pcap or pcapng file (magic 0x47455420)"
    assert str(error).startswith(str(error.path))


def test_gzip_of_something_else_is_an_error(write: Writer) -> None:
    error = one_line_error([write(b"hello world", "x.gz", compress=True)])
    assert error.problem == "not a pcap or pcapng file inside gzip (magic 0x68656c6c)"


def test_corrupt_gzip_is_an_error(write: Writer) -> None:
    error = one_line_error([write(b"\x1f\x8b\x08\x00garbage-not-deflate", "x.pcap")])
    assert error.problem.startswith("cannot read")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xd4\xc3", "too short"),
        (craft.pcap([])[:20], "pcap file header cut short (20 of 24 bytes)"),
        (craft.pcap([]).replace(b"\x02\x00\x04\x00", b"\x03\x00\x00\x00", 1), "version 3.0"),
        (craft.shb()[:10], "pcapng section header cut short"),
        (craft.shb().replace(b"\x4d\x3c\x2b\x1a", b"\x00\x00\x00\x00"), "byte-order magic"),
        (craft.shb(major=2), "unsupported pcapng version 2.0"),
        (b"\x34\xcd\xb2\xa1" + b"\x00" * 20, "Kuznetzov"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd-compressed"),
    ],
    ids=["tiny", "cut-header", "version", "ng-cut", "ng-bom", "ng-version", "kuznetzov", "zstd"],
)
def test_unusable_headers_are_errors(write: Writer, data: bytes, problem: str) -> None:
    error = one_line_error([write(data)])
    assert problem in error.problem


def test_unreadable_file_is_an_error(write: Writer) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = write(ring_file(T0, 1, 0))
    path.chmod(0)
    assert "permission denied" in one_line_error([path]).problem


def test_no_paths_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        open_capture([], "c")
