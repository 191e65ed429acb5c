#!/usr/bin/env python3
"""Floods and monsters: captures that are large for a reason other than mail volume.

Four cases, each written with `struct` (classic pcap, Ethernet, IPv4, correct checksums) and
analysed by `smtpfw analyze` in a child process whose wall time and peak resident set size
(`ru_maxrss` of that child alone, from `os.wait4`) are printed with the size of its report.json:

- `syn`: half-open SYNs to port 25 from many clients, never answered (a SYN flood);
- `tiny`: established connections to port 25 that carry one client byte each and close (no
  SMTP line either way: counted, not sessions);
- `lines`: as many real sessions as `tiny`, each the greeting, QUIT and its reply;
- `rcpt`: one session whose client pipelines a great many RCPT commands, all accepted;
- `noop`: sessions of many answered NOOPs each;
- `tarpit`: the same NOOPs never answered (a tarpit), so no command finds a reply.

With tshark on the PATH (or `--tshark PATH`), each capture is also read by tshark's SMTP pass
of `run.py` (`-Y smtp -T fields -e smtp.req.command -e smtp.response.code`), measured the same
way, and the ratio of the two wall times is printed (`--no-tshark` skips it).

What it does not do: time anything against a target or fail on a number (the figures are for
reading); model real traffic; write IPv6 or pcapng.

Usage: floods.py [--full] [--case syn|tiny|lines|rcpt|noop|tarpit ...] [--keep DIR]
Default sizes are small (seconds); `--full` uses 1,000,000 SYNs, 100,000 one-byte connections
and as many greeting-QUIT sessions,
2,000,000 RCPTs and 30 sessions of 10,000 NOOPs (answered, and unanswered).
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
"""Classic pcap, microsecond timestamps, Ethernet (LINKTYPE_ETHERNET = 1)."""
ETHER = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
ETHER_BACK = bytes.fromhex("020000000001020000000002") + b"\x08\x00"
SERVER_IP = bytes([203, 0, 113, 9])
SMTP_PORT = 25
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
SEGMENT = 1400
"""Payload bytes per segment of a long pipelined batch."""
START = 1_700_000_000.0


def _sum16(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    return (value << 8 if len(data) & 1 else value) % 0xFFFF


def _checksum(total: int) -> int:
    folded = total % 0xFFFF
    return 0xFFFF - (0xFFFF if folded == 0 and total else folded)


class Writer:
    """Frames appended to one pcap file."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        handle.write(PCAP_HEADER)
        self.ip_id = 0

    def tcp(
        self,
        ts: float,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
        to_client: bool = False,
    ) -> None:
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        tcp = struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            5 << 4,
            flags,
            65535,
            0,
            0,
        )
        pseudo = src + dst + struct.pack("!HH", 6, len(tcp) + len(payload))
        check = _checksum(_sum16(pseudo) + _sum16(tcp) + _sum16(payload))
        tcp = tcp[:16] + struct.pack("!H", check) + tcp[18:]
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(tcp) + len(payload),
            self.ip_id,
            0,
            64,
            6,
            0,
            src,
            dst,
        )
        ip = ip[:10] + struct.pack("!H", _checksum(_sum16(ip))) + ip[12:]
        frame = (ETHER_BACK if to_client else ETHER) + ip + tcp + payload
        sec = int(ts)
        self.handle.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)))
        self.handle.write(frame)


def _client(i: int) -> tuple[bytes, int]:
    """A distinct client address and port for connection `i`."""
    return bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF]), 1024 + i % 60000


class Conn:
    """One established connection to the server, written segment by segment."""

    def __init__(self, w: Writer, i: int, ts: float) -> None:
        self.w, self.ts = w, ts
        self.ip, self.port = _client(i)
        self.cseq, self.sseq = 1000, 500000
        w.tcp(ts, self.ip, SERVER_IP, self.port, SMTP_PORT, self.cseq, 0, SYN)
        w.tcp(
            ts, SERVER_IP, self.ip, SMTP_PORT, self.port, self.sseq, 1001, SYN | ACK, to_client=True
        )
        self.cseq += 1
        self.sseq += 1
        w.tcp(ts, self.ip, SERVER_IP, self.port, SMTP_PORT, self.cseq, self.sseq, ACK)

    def client(self, data: bytes) -> None:
        for at in range(0, len(data), SEGMENT):
            piece = data[at : at + SEGMENT]
            self.ts += 0.0001
            self.w.tcp(
                self.ts,
                self.ip,
                SERVER_IP,
                self.port,
                SMTP_PORT,
                self.cseq,
                self.sseq,
                PSH | ACK,
                piece,
            )
            self.cseq += len(piece)

    def server(self, data: bytes) -> None:
        for at in range(0, len(data), SEGMENT):
            piece = data[at : at + SEGMENT]
            self.ts += 0.0001
            self.w.tcp(
                self.ts,
                SERVER_IP,
                self.ip,
                SMTP_PORT,
                self.port,
                self.sseq,
                self.cseq,
                PSH | ACK,
                piece,
                to_client=True,
            )
            self.sseq += len(piece)

    def close(self) -> None:
        w, ts = self.w, self.ts + 0.0001
        w.tcp(ts, self.ip, SERVER_IP, self.port, SMTP_PORT, self.cseq, self.sseq, FIN | ACK)
        w.tcp(
            ts,
            SERVER_IP,
            self.ip,
            SMTP_PORT,
            self.port,
            self.sseq,
            self.cseq + 1,
            FIN | ACK,
            to_client=True,
        )
        w.tcp(ts, self.ip, SERVER_IP, self.port, SMTP_PORT, self.cseq + 1, self.sseq + 1, ACK)


def syn_flood(w: Writer, count: int) -> None:
    for i in range(count):
        ip, port = _client(i)
        w.tcp(START + i * 1e-5, ip, SERVER_IP, port, SMTP_PORT, 1000 + i, 0, SYN)


def tiny_sessions(w: Writer, count: int) -> None:
    for i in range(count):
        conn = Conn(w, i, START + i * 1e-3)
        conn.client(b"Q")
        conn.close()


def one_line_sessions(w: Writer, count: int) -> None:
    for i in range(count):
        conn = Conn(w, i, START + i * 1e-3)
        conn.server(b"220 mx.example.org ESMTP\r\n")
        conn.client(b"QUIT\r\n")
        conn.server(b"221 2.0.0 Bye\r\n")
        conn.close()


def _batches(line: bytes, count: int, per: int = 1000) -> Iterator[bytes]:
    for done in range(0, count, per):
        yield line * min(per, count - done)


def _opening(conn: Conn) -> None:
    conn.server(b"220 mx.example.org ESMTP\r\n")
    conn.client(b"EHLO client.example.net\r\n")
    conn.server(b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n")


def _closing(conn: Conn) -> None:
    conn.client(b"QUIT\r\n")
    conn.server(b"221 2.0.0 Bye\r\n")
    conn.close()


def pipelined_rcpt(w: Writer, count: int) -> None:
    conn = Conn(w, 1, START)
    _opening(conn)
    conn.client(b"MAIL FROM:<a@example.net>\r\n")
    conn.server(b"250 2.1.0 Ok\r\n")
    for commands, replies in zip(
        _batches(b"RCPT TO:<b@example.org>\r\n", count),
        _batches(b"250 2.1.5 Ok\r\n", count),
        strict=True,
    ):
        conn.client(commands)
        conn.server(replies)
    conn.client(b"DATA\r\n")
    conn.server(b"354 go ahead\r\n")
    conn.client(b"Subject: many\r\n\r\nHello.\r\n.\r\n")
    conn.server(b"250 2.0.0 Ok: queued\r\n")
    _closing(conn)


def noop_sessions(w: Writer, sessions: int, noops: int, *, answered: bool = True) -> None:
    """Sessions of `noops` pipelined NOOPs each; unanswered, the server (a tarpit) never
    replies to them, so no command finds its reply."""
    for i in range(sessions):
        conn = Conn(w, i, START + i)
        _opening(conn)
        for commands, replies in zip(
            _batches(b"NOOP\r\n", noops, 200),
            _batches(b"250 2.0.0 Ok\r\n", noops, 200),
            strict=True,
        ):
            conn.client(commands)
            if answered:
                conn.server(replies)
        _closing(conn)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    write: Callable[[Writer], None]


def cases(full: bool) -> list[Case]:
    syns, tiny, rcpts, noop_count = (
        (1_000_000, 100_000, 2_000_000, 10_000) if full else (50_000, 5_000, 100_000, 2_000)
    )
    noop_runs = 30 if full else 5
    return [
        Case("syn", f"{syns:,} half-open SYNs", lambda w: syn_flood(w, syns)),
        Case("tiny", f"{tiny:,} one-byte connections", lambda w: tiny_sessions(w, tiny)),
        Case("lines", f"{tiny:,} greeting-QUIT sessions", lambda w: one_line_sessions(w, tiny)),
        Case("rcpt", f"{rcpts:,} pipelined RCPTs", lambda w: pipelined_rcpt(w, rcpts)),
        Case(
            "noop",
            f"{noop_runs} sessions of {noop_count:,} NOOPs",
            lambda w: noop_sessions(w, noop_runs, noop_count),
        ),
        Case(
            "tarpit",
            f"{noop_runs} sessions of {noop_count:,} unanswered NOOPs",
            lambda w: noop_sessions(w, noop_runs, noop_count, answered=False),
        ),
    ]


TSHARK_ARGS = ("-Y", "smtp", "-T", "fields", "-e", "smtp.req.command", "-e", "smtp.response.code")
"""The tshark pass `run.py` compares against: dissect every frame, print SMTP commands and codes."""


def measure(pcap: Path, out: Path) -> tuple[float, float, int]:
    """Run `smtpfw analyze` on `pcap`: wall seconds, peak RSS (MiB), exit status."""
    return _child([sys.executable, "-m", "analyzer", "analyze", str(pcap), "--out", str(out)])


def measure_tshark(tshark: str, pcap: Path) -> tuple[float, float, int]:
    """Run tshark's SMTP pass on `pcap`: wall seconds, peak RSS (MiB), exit status."""
    return _child([tshark, "-r", str(pcap), *TSHARK_ARGS])


def _child(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit status of one child running `command`."""
    begin = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - begin
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if proc.returncode > 1 and err:
            print(err, file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full sizes (minutes)")
    parser.add_argument(
        "--case", action="append", choices=["syn", "tiny", "lines", "rcpt", "noop", "tarpit"]
    )
    parser.add_argument("--keep", type=Path, help="write captures and reports here")
    parser.add_argument("--tshark", default=shutil.which("tshark"), help="tshark to compare with")
    parser.add_argument("--no-tshark", action="store_true", help="do not run tshark")
    args = parser.parse_args(argv)
    tshark = None if args.no_tshark else args.tshark
    chosen = [c for c in cases(args.full) if not args.case or c.name in args.case]
    with tempfile.TemporaryDirectory(prefix="smtpfw-floods-") as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        print(
            f"{'case':<34} {'pcap MB':>8} {'write s':>8} {'wall s':>8} {'peak MiB':>9} "
            f"{'report MB':>10}"
            + (f" {'tshark s':>9} {'tshark MiB':>10} {'ratio':>6}" if tshark else "")
        )
        failed = False
        for case in chosen:
            pcap = root / f"{case.name}.pcap"
            begin = time.perf_counter()
            with open(pcap, "wb") as handle:
                case.write(Writer(handle))
            written = time.perf_counter() - begin
            out = root / f"{case.name}-report"
            wall, peak, code = measure(pcap, out)
            report = out / "report.json"
            size = report.stat().st_size / 1e6 if report.exists() else float("nan")
            failed = failed or code > 1
            theirs = ""
            if tshark:
                t_wall, t_peak, t_code = measure_tshark(tshark, pcap)
                theirs = f" {t_wall:>9.1f} {t_peak:>10.0f} {wall / t_wall:>6.2f}"
                theirs += "" if t_code == 0 else f"  tshark exit {t_code}"
            print(
                f"{case.what:<34} {pcap.stat().st_size / 1e6:>8.1f} {written:>8.1f} "
                f"{wall:>8.1f} {peak:>9.0f} {size:>10.2f}"
                + theirs
                + ("" if code <= 1 else f"  exit {code}"),
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
