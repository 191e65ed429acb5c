"""The capture layer agrees with tshark, frame by frame, on real and crafted captures.

For every TCP segment: the frame number, the raw sequence number and the payload length must be
what `tshark -T fields -e frame.number -e tcp.seq_raw -e tcp.len` prints, in the same order.

Where tshark and this layer see things differently, by design:
- tshark's `tcp` filter also matches ICMP/ICMPv6 errors that quote the start of a TCP header
  (zeek/traces/smtp.pcap frames 26, 28-30 are "port unreachable" quoting SMTP segments). Those
  are not segments of any connection, so the comparison filters with `!icmp && !icmpv6`.
- A frame cut by snaplen inside the fixed 20-byte TCP header is listed by tshark with empty
  seq/len fields; here it is a malformed frame. tshark rows without a sequence number are
  therefore left out of the comparison.

To stay fast, the real captures are compared in one tshark run: `mergecap -a` joins them into
one file, and `capinfos` (one run) gives each file's frame count to split tshark's numbering
back per file. A capture that wiretap itself reports as damaged is compared on its own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer.capture import open_capture
from analyzer.capture.decode import SUPPORTED_LINK_TYPES
from tests.realworld_path import REALWORLD as REALWORLD_DIR

from . import zoo

TSHARK = shutil.which("tshark")
MERGECAP = shutil.which("mergecap")
CAPINFOS = shutil.which("capinfos")
FILTER = "tcp && !icmp && !icmpv6"
FIELDS = ("frame.number", "tcp.seq_raw", "tcp.len")
TIME_FIELDS = ("-e", "frame.number", "-e", "frame.time_epoch")

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(
        None in (TSHARK, MERGECAP, CAPINFOS), reason="tshark, mergecap and capinfos needed"
    ),
]


def _realworld_dir() -> Path | None:
    return REALWORLD_DIR if REALWORLD_DIR.is_dir() else None


REALWORLD = _realworld_dir()
REAL_CAPTURES = (
    sorted(
        p
        for p in REALWORLD.rglob("*")
        if p.is_file() and p.name.endswith((".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"))
    )
    if REALWORLD
    else []
)

Row = tuple[int, int, int]


def tshark_rows(path: Path) -> list[Row]:
    """(frame, seq, len) of every TCP segment tshark shows in `path`, in frame order."""
    result = subprocess.run(
        [str(TSHARK), "-n", "-r", str(path), "-Y", FILTER, "-T", "fields"]
        + [arg for field in FIELDS for arg in ("-e", field)],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in result.stdout.splitlines():
        frame, seq, length = line.split("\t")
        if seq:
            rows.append((int(frame), int(seq), int(length)))
    return rows


def our_rows(path: Path) -> list[Row]:
    capture = open_capture([path], "x")
    return [(s.frame.frame_no, s.seq, s.payload_len) for s in capture.segments()]


@pytest.fixture(scope="module")
def tshark_real() -> dict[Path, list[Row]]:
    """tshark's rows for every real capture, from one merged tshark run."""
    if not REAL_CAPTURES:
        return {}
    info = subprocess.run(
        [str(CAPINFOS), "-T", "-c", "-M", "-r", *map(str, REAL_CAPTURES)],
        capture_output=True,
        text=True,
        check=False,
    )
    counts: dict[Path, int] = {}
    for line in info.stdout.splitlines():
        name, _, count = line.rpartition("\t")
        counts[Path(name)] = int(count)
    readable = [p for p in REAL_CAPTURES if p in counts]
    rows: dict[Path, list[Row]] = {p: tshark_rows(p) for p in REAL_CAPTURES if p not in counts}
    merged = Path(__import__("tempfile").mkdtemp()) / "merged.pcapng"
    try:
        subprocess.run(
            [str(MERGECAP), "-a", "-w", str(merged), *map(str, readable)],
            check=True,
            capture_output=True,
        )
        all_rows = tshark_rows(merged)
    finally:
        shutil.rmtree(merged.parent)
    start = 0
    for path in readable:
        end = start + counts[path]
        rows[path] = [(f - start, s, n) for f, s, n in all_rows if start < f <= end]
        start = end
    return rows


@pytest.mark.skipif(not REAL_CAPTURES, reason="no shared/realworld captures here")
@pytest.mark.parametrize(
    "path", REAL_CAPTURES, ids=[str(p.relative_to(REALWORLD or "/")) for p in REAL_CAPTURES]
)
def test_real_capture_segments_match_tshark(path: Path, tshark_real: dict[Path, list[Row]]) -> None:
    capture = open_capture([path], "x")
    unsupported = set(capture.files[0].link_types) - SUPPORTED_LINK_TYPES
    if unsupported:
        pytest.skip(f"link types {sorted(unsupported)} not decoded")
    ours = [(s.frame.frame_no, s.seq, s.payload_len) for s in capture.segments()]
    assert ours == tshark_real[path]
    assert ours, "every shared capture holds TCP"


def test_damaged_real_capture_is_read_as_far_as_tshark_reads_it() -> None:
    damaged = [p for p in REAL_CAPTURES if "smtp-to-comma" in str(p)]
    if not damaged:
        pytest.skip("the hand-edited smtp-to-comma capture is not here")
    capture = open_capture(damaged, "x")
    assert [(s.frame.frame_no, s.seq, s.payload_len) for s in capture.segments()] == tshark_rows(
        damaged[0]
    )
    assert capture.stats.packets == 18
    assert capture.stats.anomaly_counts == {"bad_block": 1}


def test_crafted_zoo_of_link_types_and_blocks_matches_tshark(tmp_path: Path) -> None:
    path = tmp_path / "zoo.pcapng"
    path.write_bytes(zoo.build())
    ours = our_rows(path)
    assert ours == tshark_rows(path)
    assert len(ours) == 26


def test_crafted_zoo_timestamps_match_tshark(tmp_path: Path) -> None:
    path = tmp_path / "zoo.pcapng"
    path.write_bytes(zoo.build())
    result = subprocess.run(
        [str(TSHARK), "-r", str(path), "-T", "fields", *TIME_FIELDS],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = {}
    for line in result.stdout.splitlines():
        frame, epoch = line.split("\t")
        if epoch:  # simple packet blocks have no timestamp
            theirs[int(frame)] = float(epoch)
    capture = open_capture([path], "x")
    ours = {s.frame.frame_no: s.ts for s in capture.segments() if s.frame.frame_no in theirs}
    assert ours == pytest.approx({k: v for k, v in theirs.items() if k in ours}, abs=1e-6)
    assert len(ours) == 24
