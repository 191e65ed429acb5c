"""Read the lab's captures with tshark, an implementation independent of smtpfw's own reader.

What it does: turns every TCP packet of a pcap/pcapng file into a `Frame` (raw sequence numbers,
flags, TTL, IP-ID, payload, SACK edges, TCP timestamp, checksum verdict, captured and wire
length), groups them into connections with the bytes each direction carried, and reads a file's
format, link type and time-stamp resolution from its first bytes.
What it does not do: reassemble out-of-order data (the lab's wire is a veth: nothing reorders),
or interpret SMTP.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .addresses import SMTP_PORT
from .shell import run
from .tcpip import TCP_FIN, TCP_RST, TCP_SYN

FIELDS = (
    "frame.number", "frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport",
    "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "ip.ttl", "ip.id", "tcp.payload",
    "tcp.options.sack_le", "tcp.options.sack_re", "tcp.checksum.status", "ip.checksum.status",
    "tcp.options.timestamp.tsval", "frame.cap_len", "frame.len",
)  # fmt: skip
TSHARK_PREFS = (
    "tcp.relative_sequence_numbers:FALSE",
    "tcp.check_checksum:TRUE",
    "ip.check_checksum:TRUE",
    "tcp.analyze_sequence_numbers:FALSE",
    "tcp.desegment_tcp_streams:FALSE",
)
CHECKSUM_GOOD = 1  # Wireshark's proto_checksum_status: 0 bad, 1 good, 2 unverified

PCAP_MAGIC_US = 0xA1B2C3D4  # pcap file header magic, microsecond time stamps
PCAP_MAGIC_NS = 0xA1B23C4D  # nanosecond time stamps
PCAPNG_SHB = 0x0A0D0D0A  # pcapng section header block type
PCAPNG_IDB = 0x00000001  # interface description block
PCAPNG_OPT_TSRESOL = 9
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL2 = 276


@dataclass(frozen=True, slots=True)
class Frame:
    number: int
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    ttl: int
    ip_id: int
    payload: bytes
    sack: tuple[tuple[int, int], ...]
    tcp_checksum_good: bool
    ip_checksum_good: bool
    tsval: int | None = None
    """TCP timestamp option value (RFC 7323), None without the option."""
    cap_len: int = 0
    """Bytes of the frame in the capture file."""
    wire_len: int = 0
    """Bytes the frame had on the wire (more than cap_len when the snap length cut it)."""

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    @property
    def client_to_server(self) -> bool:
        return self.dport in SERVER_PORTS


SERVER_PORTS = frozenset({SMTP_PORT})


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def read_frames(path: Path) -> list[Frame]:
    argv = ["tshark", "-n", "-r", str(path), "-Y", "tcp", "-T", "fields", "-E", "separator=/t"]
    for pref in TSHARK_PREFS:
        argv += ["-o", pref]
    for f in FIELDS:
        argv += ["-e", f]
    out = run(argv).stdout.decode()
    frames = []
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < len(FIELDS):
            cols += [""] * (len(FIELDS) - len(cols))
        lefts, rights = _ints(cols[12]), _ints(cols[13])
        frames.append(
            Frame(
                number=int(cols[0]),
                ts=float(cols[1]),
                src=cols[2],
                dst=cols[3],
                sport=int(cols[4]),
                dport=int(cols[5]),
                seq=int(cols[6]),
                ack=int(cols[7]),
                flags=int(cols[8], 16),
                ttl=int(cols[9].split(",")[0]),
                ip_id=int(cols[10].split(",")[0], 16),
                payload=bytes.fromhex(cols[11].replace(":", "")),
                sack=tuple(zip(lefts, rights, strict=False)),
                tcp_checksum_good=cols[14] == str(CHECKSUM_GOOD),
                ip_checksum_good=cols[15].split(",")[0] == str(CHECKSUM_GOOD),
                tsval=int(cols[16].split(",")[0]) if cols[16] else None,
                cap_len=int(cols[17]),
                wire_len=int(cols[18]),
            )
        )
    return frames


@dataclass
class Connection:
    """One TCP connection in one capture, keyed by its client end."""

    client: str
    client_port: int
    server: str
    server_port: int
    frames: list[Frame] = field(default_factory=list)

    def direction(self, client_to_server: bool) -> list[Frame]:
        return [
            f for f in self.frames if (f.src == self.client and f.sport == self.client_port)
            == client_to_server
        ]  # fmt: skip

    def stream(self, client_to_server: bool) -> bytes:
        """Bytes one direction carried, in sequence order, each byte once."""
        frames = self.direction(client_to_server)
        syn = next((f for f in frames if f.has(TCP_SYN)), None)
        if syn is None:
            return b"".join(f.payload for f in frames)
        base = syn.seq + 1
        data: dict[int, int] = {}
        for f in frames:
            off = (f.seq - base) % 2**32
            for i, b in enumerate(f.payload):
                data.setdefault(off + i, b)
        return bytes(data[i] for i in sorted(data))

    def payload_lengths(self, client_to_server: bool) -> list[int]:
        return [len(f.payload) for f in self.direction(client_to_server) if f.payload]

    def syn(self, client_to_server: bool) -> Frame | None:
        return next((f for f in self.direction(client_to_server) if f.has(TCP_SYN)), None)

    def resets(self) -> list[Frame]:
        return [f for f in self.frames if f.has(TCP_RST)]

    def fins(self) -> list[Frame]:
        return [f for f in self.frames if f.has(TCP_FIN)]


def connections(frames: list[Frame]) -> list[Connection]:
    """Group frames by connection (client = the end not on a server port), in order of first."""
    table: dict[tuple[str, int, str, int], Connection] = {}
    order: dict[tuple[str, int, str, int], int] = defaultdict(int)
    for f in frames:
        if f.dport in SERVER_PORTS:
            key = (f.src, f.sport, f.dst, f.dport)
        else:
            key = (f.dst, f.dport, f.src, f.sport)
        if key not in table:
            table[key] = Connection(*key)
            order[key] = f.number
        table[key].frames.append(f)
    return [table[k] for k in sorted(table, key=lambda k: order[k])]


@dataclass(frozen=True, slots=True)
class FileInfo:
    format: str
    """'pcap' or 'pcapng'."""
    link_type: int
    ts_resolution: str
    """'us' or 'ns'."""


def file_info(path: Path) -> FileInfo:
    """Format, link type and time-stamp resolution, from the file's first blocks."""
    raw = path.read_bytes()[:4096]
    (magic,) = struct.unpack_from("<I", raw, 0)
    if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        (link,) = struct.unpack_from("<I", raw, 20)
        return FileInfo("pcap", link & 0x0FFFFFFF, "ns" if magic == PCAP_MAGIC_NS else "us")
    if magic == PCAPNG_SHB:
        (shb_len,) = struct.unpack_from("<I", raw, 4)
        off = shb_len
        (btype, blen, link) = struct.unpack_from("<IIH", raw, off)
        if btype != PCAPNG_IDB:
            raise ValueError(f"{path}: no interface description block after the section header")
        resol = "us"
        opt = off + 16
        while opt + 4 <= off + blen - 4:
            code, length = struct.unpack_from("<HH", raw, opt)
            if code == 0:
                break
            if code == PCAPNG_OPT_TSRESOL and raw[opt + 4] == 9:
                resol = "ns"
            opt += 4 + (length + 3) // 4 * 4
        return FileInfo("pcapng", link, resol)
    raise ValueError(f"{path}: not a little-endian pcap or pcapng file")
