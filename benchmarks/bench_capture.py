"""Speed of the capture layer alone: reading and decoding a large synthetic pcap.

Writes a pcap of SMTP-like TCP traffic (bulk DATA segments of 1448 bytes with the timestamp
option, one pure ACK for every two data segments, spread over many connections) to a temporary
directory, then times `sum(1 for _ in open_capture([f], "x").segments())` and prints MB/s.

    .venv/bin/python benchmarks/bench_capture.py [--size-mb 200] [--repeat 3] [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer.capture import open_capture

MSS_PAYLOAD = 1448
"""Payload of a full segment with the 12-byte timestamp option on a 1500-byte MTU."""
CONNECTIONS = 500
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
RECORD = struct.Struct("<IIII")


def _frame(flow: int, to_server: bool, seq: int, ack: int, payload: bytes) -> bytes:
    client = bytes((10, 1, flow >> 8, flow & 0xFF))
    server = bytes((192, 0, 2, 25))
    src, dst = (client, server) if to_server else (server, client)
    sport, dport = (40000 + flow, 25) if to_server else (25, 40000 + flow)
    options = struct.pack("!BBBBII", 1, 1, 8, 10, seq & 0xFFFF, ack & 0xFFFF)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 8 << 4, 0x18, 502, 0, 0) + options
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, flow, 0x4000, 64, 6, 0, src, dst)
    mac_c = b"\x02\x00\x00\x00\x00\x01"
    mac_s = b"\x02\x00\x00\x00\x00\x02"
    eth = (mac_s + mac_c if to_server else mac_c + mac_s) + b"\x08\x00"
    return eth + ip + tcp + payload


def write_capture(path: Path, size: int) -> int:
    """Write a pcap of about `size` bytes; return the number of records."""
    payload = (b"X" * 76 + b"\r\n") * (MSS_PAYLOAD // 78) + b"Y" * (MSS_PAYLOAD % 78)
    seqs = [1000] * CONNECTIONS
    records = 0
    written = len(PCAP_HEADER)
    ts_us = 1_700_000_000 * 1_000_000
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        batch: list[bytes] = []
        while written < size:
            flow = records % CONNECTIONS
            frames = []
            for _ in range(2):
                frames.append(_frame(flow, True, seqs[flow], 5000, payload))
                seqs[flow] = (seqs[flow] + MSS_PAYLOAD) & 0xFFFFFFFF
            frames.append(_frame(flow, False, 5000, seqs[flow], b""))
            for frame in frames:
                ts_us += 37
                sec, usec = divmod(ts_us, 1_000_000)
                batch.append(RECORD.pack(sec, usec, len(frame), len(frame)))
                batch.append(frame)
                written += RECORD.size + len(frame)
                records += 1
            if len(batch) > 4096:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    return records


def measure(path: Path, repeat: int) -> tuple[float, int]:
    """Best wall time of `repeat` full passes, and the number of segments."""
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = sum(1 for _ in open_capture([path], "x").segments())
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gzip", action="store_true", help="also time the gzip-compressed file")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    try:
        path = tmp / "synthetic.pcap"
        records = write_capture(path, int(args.size_mb * 1e6))
        size = path.stat().st_size
        seconds, segments = measure(path, args.repeat)
        assert segments == records, (segments, records)
        print(
            f"pcap  {size / 1e6:.1f} MB, {records} records: {seconds:.2f} s, "
            f"{size / 1e6 / seconds:.1f} MB/s, {records / seconds / 1e3:.0f} k segments/s"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory {peak:.0f} MiB (the file is {size / 2**20:.0f} MiB)")
        if args.gzip:
            gz = tmp / "synthetic.pcap.gz"
            with open(path, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 4 << 20)
            seconds, segments = measure(gz, args.repeat)
            print(
                f"gzip  {size / 1e6:.1f} MB uncompressed: {seconds:.2f} s, "
                f"{size / 1e6 / seconds:.1f} MB/s (uncompressed bytes)"
            )
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
