"""The benchmark capture generator writes what it says it writes, the same way every time.

The capture is read back here with a small reader of its own (struct only), not with the
generator's code: every frame is Ethernet + IPv4 with valid checksums, each TCP direction
reassembles to one contiguous stream (retransmissions repeat identical bytes), and the counts the
generator reports (sessions, MAIL transactions, messages, DNS queries) are what the streams hold.
tshark, when installed, dissects the same number of MAIL commands and queued replies. The
benchmark runner's child-process measurement is checked against a child of known size.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import shutil
import struct
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TSHARK = shutil.which("tshark")
SMALL = 2 << 20
MAIL_PORTS = (25, 587)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"smtpfw_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
run = _load("run")


@dataclass(frozen=True, slots=True)
class Frame:
    ts: float
    proto: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    flags: int
    options: bytes
    payload: bytes


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def read_frames(path: Path) -> list[Frame]:
    """Every frame of a classic-pcap Ethernet/IPv4 file; asserts each checksum on the way."""
    data = path.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    frames: list[Frame] = []
    pos = 24
    while pos < len(data):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", data, pos)
        assert caplen == wirelen
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        assert frame[12:14] == b"\x08\x00", "IPv4 over Ethernet"
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        assert ip[0] >> 4 == 4 and total == len(ip)
        assert _ones_sum(ip[:ihl]) == 0xFFFF, "IPv4 header checksum"
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        l4 = ip[ihl:total]
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        assert _ones_sum(pseudo + l4) == 0xFFFF, f"{proto} checksum"
        if proto == 6:
            sport, dport, seq, _ack, off, flags = struct.unpack_from("!HHIIBB", l4)
            hlen = (off >> 4) * 4
            ts = sec + usec / 1e6
            frames.append(Frame(ts, 6, src, dst, sport, dport, seq, flags, l4[20:hlen], l4[hlen:]))
        else:
            assert proto == 17
            sport, dport = struct.unpack_from("!HH", l4)
            frames.append(Frame(sec + usec / 1e6, 17, src, dst, sport, dport, 0, 0, b"", l4[8:]))
    assert pos == len(data), "no trailing bytes"
    return frames


def reassemble(frames: list[Frame]) -> dict[tuple[bytes, int, bytes, int], bytes]:
    """Each TCP direction's bytes in sequence order; asserts contiguity and identical repeats."""
    isn: dict[tuple[bytes, int, bytes, int], int] = {}
    pieces: dict[tuple[bytes, int, bytes, int], dict[int, bytes]] = defaultdict(dict)
    for f in frames:
        if f.proto != 6:
            continue
        key = (f.src, f.sport, f.dst, f.dport)
        if f.flags & 0x02:  # SYN
            isn[key] = f.seq
            continue
        if not f.payload:
            continue
        offset = (f.seq - isn[key] - 1) & 0xFFFF_FFFF
        seen = pieces[key].setdefault(offset, f.payload)
        assert seen == f.payload, "a retransmission carries the same bytes"
    streams = {}
    for key, by_offset in pieces.items():
        out = bytearray()
        for offset in sorted(by_offset):
            assert offset == len(out), "no gap and no overlap"
            out += by_offset[offset]
        streams[key] = bytes(out)
    return streams


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A ~2 MB capture whose messages all go with DATA (so tshark can follow every session)."""
    path = tmp_path_factory.mktemp("bench") / "plain.pcap"
    return path, generate.generate(path, SMALL, seed=7, bdat=False)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("bench") / "default.pcap"
    return path, generate.generate(path, SMALL, seed=3)


def test_sizes_are_read_with_binary_suffixes() -> None:
    assert generate.parse_size("200M") == 200 << 20
    assert generate.parse_size("1G") == 1 << 30
    assert generate.parse_size("1.5g") == 3 << 29
    assert generate.parse_size("512KiB") == 512 << 10
    assert generate.parse_size("123456") == 123456
    for bad in ("", "1T", "M", "-1M", "1 gig"):
        with pytest.raises(ValueError):
            generate.parse_size(bad)


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    def digest(seed: int, name: str) -> str:
        path = tmp_path / name
        generate.generate(path, 512 << 10, seed=seed)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert digest(11, "a.pcap") == digest(11, "b.pcap")
    assert digest(11, "a.pcap") != digest(12, "c.pcap")


def test_the_file_is_about_the_size_asked_for(default: tuple[Path, Any]) -> None:
    path, stats = default
    assert path.stat().st_size == stats.bytes
    assert 0.85 * SMALL <= stats.bytes <= 1.15 * SMALL


def test_the_reported_counts_are_what_the_frames_hold(default: tuple[Path, Any]) -> None:
    path, stats = default
    frames = read_frames(path)
    assert len(frames) == stats.packets
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(frames))
    syns = [f for f in frames if f.proto == 6 and f.flags & 0x12 == 0x02]
    assert sum(f.dport in MAIL_PORTS for f in syns) == stats.smtp_sessions
    assert sum(f.dport == 587 for f in syns) == stats.submission_sessions
    assert sum(f.dport == 80 for f in syns) == stats.http_flows
    assert sum(f.proto == 17 and f.dport == 53 for f in frames) == stats.dns_queries
    assert sum(bool(f.flags & 0x04) for f in frames) == stats.rst_sessions
    assert stats.peak_concurrency > 10


def test_every_segment_fits_one_mss(default: tuple[Path, Any]) -> None:
    frames = read_frames(default[0])
    for f in frames:
        if f.proto == 6:
            assert len(f.payload) <= (1448 if f.options[:4] == b"\x01\x01\x08\x0a" else 1460)
    full = sum(len(f.payload) in (1448, 1460) for f in frames if f.proto == 6)
    assert full > len(frames) / 3, "bulk data goes in MSS-sized segments"


def test_streams_hold_one_mail_command_per_transaction(default: tuple[Path, Any]) -> None:
    path, stats = default
    streams = reassemble(read_frames(path))
    to_server = [data for (_, _, _, dport), data in streams.items() if dport in MAIL_PORTS]
    lines = [line for data in to_server for line in data.split(b"\r\n")]
    assert sum(line.startswith(b"MAIL FROM:<") for line in lines) == stats.transactions
    assert sum(line.startswith(b"STARTTLS") for line in lines) == stats.starttls_sessions
    assert sum(line.endswith(b" LAST") for line in lines) == stats.bdat_messages
    # dot-stuffing: a lone "." only ever ends a DATA message
    ends = sum(data.count(b"\r\n.\r\n") for data in to_server)
    assert ends == stats.messages - stats.bdat_messages
    assert any(line.startswith(b"..") for line in lines), "some body lines are dot-stuffed"
    assert any(len(line) == 76 and b" " not in line for line in lines), "base64 attachment lines"
    assert any(line.startswith(b"DKIM-Signature: v=1;") for line in lines)


def test_the_capture_has_the_perturbations_it_promises(default: tuple[Path, Any]) -> None:
    _, stats = default
    assert stats.retransmitted_segments > 0
    assert stats.out_of_order_segments > 0
    assert stats.starttls_sessions > 0
    assert stats.rejected_recipients > 0


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**32), concurrency=st.integers(1, 40), size=st.integers(20_000, 300_000)
)
def test_any_seed_gives_valid_frames_and_gapless_streams(
    tmp_path_factory: pytest.TempPathFactory, seed: int, concurrency: int, size: int
) -> None:
    path = tmp_path_factory.mktemp("any") / "any.pcap"
    stats = generate.generate(path, size, seed=seed, concurrency=concurrency)
    frames = read_frames(path)
    reassemble(frames)
    assert len(frames) == stats.packets
    assert stats.peak_concurrency <= concurrency


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_dissects_every_mail_command_and_queued_reply(plain: tuple[Path, Any]) -> None:
    path, stats = plain
    assert TSHARK is not None
    out = subprocess.run(
        [TSHARK, "-r", str(path), "-Y", "smtp", "-T", "fields",
         "-e", "smtp.req.command", "-e", "smtp.rsp.parameter", "-e", "_ws.malformed"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    commands = [c for line in out for c in line.split("\t")[0].split(",")]
    replies = [r for line in out for r in line.split("\t")[1].split(",")]
    assert commands.count("MAIL") == stats.transactions
    assert commands.count("STAR") == stats.starttls_sessions  # tshark shows 4-letter verbs
    queued = sum(r.startswith(("2.0.0 Ok: queued as", "OK id=")) for r in replies)
    assert queued == stats.messages
    assert not any(line.split("\t")[2] for line in out), "no malformed SMTP frame"


def test_the_runner_measures_the_child_alone(tmp_path: Path) -> None:
    # The runner is a small process of its own (`make bench`): measured from inside pytest, the
    # child's peak would include pytest's own pages (Linux keeps the high-water mark of the
    # address space a vfork()ed child leaves at exec), so the measurement runs in a fresh one.
    hold_64_mb = "b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); print('done')"
    out = tmp_path / "out.txt"
    probe = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('run', {str(BENCHMARKS / 'run.py')!r}); "
        "run = importlib.util.module_from_spec(spec); sys.modules['run'] = run; "
        "spec.loader.exec_module(run); from pathlib import Path; "
        f"m = run.measure([sys.executable, '-c', {hold_64_mb!r}], Path({str(out)!r})); "
        "print(m.ok, m.peak_rss_mb)"
    )
    ok, peak = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert ok == "True" and out.read_text() == "done\n"
    assert 64 <= float(peak) < 200
    m = run.measure([sys.executable, "-c", "print('done')"], out)
    assert m.wall_s > 0
    failed = run.measure([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "x.txt")
    assert failed.exit_code == 3 and not failed.ok


def test_the_runner_counts_pipelined_mail_commands_in_tshark_fields(tmp_path: Path) -> None:
    fields = tmp_path / "fields.txt"
    fields.write_text("MAIL,RCPT,DATA\t\n\t250,250,354\nMAIL\t\nEHLO\t\nmail\t\n")
    assert run.count_tshark_mail(fields) == 3
