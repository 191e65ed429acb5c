"""Test support for the sample capture pairs: load the generator, read pcaps back, run tshark.

The reader here is written independently of the generator's encoder (plain `struct`), verifies
IPv4 and TCP checksums, and reassembles each direction of each connection by sequence number.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"


def load_generator() -> ModuleType:
    """Import captures/generate.py (and its sibling modules) under a private name."""
    name = "smtpfw_sample_captures_generate"
    if name in sys.modules:
        return sys.modules[name]
    if str(CAPTURES) not in sys.path:
        sys.path.insert(0, str(CAPTURES))
    spec = importlib.util.spec_from_file_location(name, CAPTURES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sibling(name: str) -> ModuleType:
    """One of the generator's helper modules (`_dialogues`, `_tcp`), as the generator uses it."""
    load_generator()
    return importlib.import_module(name)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class Pkt:
    frame: int
    ts_us: int
    src_mac: bytes
    dst_mac: bytes
    src: str
    dst: str
    ttl: int
    ip_id: int
    df: bool
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes
    mss: int | None
    tsval: int | None
    tsecr: int | None
    has_options: bool

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def rst(self) -> bool:
        return bool(self.flags & 0x04)

    @property
    def fin(self) -> bool:
        return bool(self.flags & 0x01)


def read_pcap(data: bytes) -> list[Pkt]:
    """Every frame of a little-endian µs Ethernet pcap; asserts valid checksums."""
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    pos = 24
    out = []
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        assert incl == orig <= snaplen and usec < 1_000_000
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        assert struct.unpack_from("!H", frame, 12)[0] == 0x0800
        ip = frame[14:]
        assert ip[0] == 0x45 and ip[9] == 6
        total = struct.unpack_from("!H", ip, 2)[0]
        assert total == len(ip), "IP total length must match the frame"
        assert _checksum(ip[:20]) == 0, "bad IPv4 header checksum"
        tcp = ip[20:total]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
        assert _checksum(pseudo + tcp) == 0, "bad TCP checksum"
        sport, dport, seq, ack, off, flags, window = struct.unpack_from("!HHIIBBH", tcp)
        hlen = (off >> 4) * 4
        opts = tcp[20:hlen]
        mss = tsval = tsecr = None
        i = 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            length = opts[i + 1]
            if kind == 2:
                mss = struct.unpack_from("!H", opts, i + 2)[0]
            elif kind == 8:
                tsval, tsecr = struct.unpack_from("!II", opts, i + 2)
            i += length
        out.append(
            Pkt(
                frame=len(out) + 1,
                ts_us=sec * 1_000_000 + usec,
                src_mac=frame[6:12],
                dst_mac=frame[0:6],
                src=".".join(str(b) for b in ip[12:16]),
                dst=".".join(str(b) for b in ip[16:20]),
                ttl=ip[8],
                ip_id=struct.unpack_from("!H", ip, 4)[0],
                df=bool(struct.unpack_from("!H", ip, 6)[0] & 0x4000),
                sport=sport,
                dport=dport,
                seq=seq,
                ack=ack,
                flags=flags,
                window=window,
                payload=tcp[hlen:],
                mss=mss,
                tsval=tsval,
                tsecr=tsecr,
                has_options=bool(opts),
            )
        )
    return out


@dataclass
class Conn:
    """One TCP connection of one capture, in order of its SYN."""

    client: tuple[str, int]
    server: tuple[str, int]
    packets: list[Pkt] = field(default_factory=list)

    def from_client(self, p: Pkt) -> bool:
        return (p.src, p.sport) == self.client

    @property
    def client_isn(self) -> int:
        return next(p.seq for p in self.packets if p.syn and self.from_client(p))

    @property
    def server_isn(self) -> int:
        return next(p.seq for p in self.packets if p.syn and not self.from_client(p))

    def stream(self, from_client: bool) -> bytes:
        """Reassemble one direction by sequence number; asserts no holes or conflicts."""
        isn = self.client_isn if from_client else self.server_isn
        buf = bytearray()
        pieces = sorted(
            ((p.seq - isn - 1) % 2**32, p.payload)
            for p in self.packets
            if self.from_client(p) == from_client and p.payload
        )
        for offset, payload in pieces:
            assert offset <= len(buf), f"hole before offset {offset}"
            overlap = buf[offset : offset + len(payload)]
            assert payload[: len(overlap)] == overlap, "retransmission with different bytes"
            buf[offset : offset + len(payload)] = payload
        return bytes(buf)

    @property
    def c2s(self) -> bytes:
        return self.stream(True)

    @property
    def s2c(self) -> bytes:
        return self.stream(False)


def connections(packets: list[Pkt]) -> list[Conn]:
    conns: dict[frozenset[tuple[str, int]], Conn] = {}
    for p in packets:
        key = frozenset({(p.src, p.sport), (p.dst, p.dport)})
        if key not in conns:
            assert p.syn and not p.flags & 0x10, "every connection starts with the client's SYN"
            conns[key] = Conn((p.src, p.sport), (p.dst, p.dport))
        conns[key].packets.append(p)
    return list(conns.values())


def tshark_path() -> str | None:
    return shutil.which("tshark")


@dataclass(frozen=True)
class TsharkRun:
    returncode: int
    stdout: str
    stderr: str
    streams: dict[int, tuple[bytes, bytes]]
    """tcp.stream index -> (client-to-server, server-to-client) bytes from `follow,tcp,raw`."""


def tshark_follow(path: Path, count: int) -> TsharkRun:
    """One tshark run: `io,stat,0` plus a raw follow of streams 0..count-1."""
    tshark = tshark_path()
    assert tshark is not None
    args = [tshark, "-n", "-r", str(path), "-q", "-z", "io,stat,0"]
    for i in range(count):
        args += ["-z", f"follow,tcp,raw,{i}"]
    run = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    streams: dict[int, tuple[bytes, bytes]] = {}
    for block in run.stdout.split("Follow: tcp,raw")[1:]:
        lines = block.splitlines()
        index = int(next(line for line in lines if line.startswith("Filter:")).split()[-1])
        c2s, s2c = bytearray(), bytearray()
        for line in lines:
            if line.startswith("====="):
                break
            text = line.strip()
            if not text or any(c not in "0123456789abcdef" for c in text):
                continue
            (s2c if line.startswith("\t") else c2s).extend(bytes.fromhex(text))
        streams[index] = (bytes(c2s), bytes(s2c))
    return TsharkRun(run.returncode, run.stdout, run.stderr, streams)
