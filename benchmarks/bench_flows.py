"""Speed of the flow layer alone: `FlowTable.add` over prebuilt segments.

Builds SMTP-like traffic in memory: many concurrent connections (handshake, then bulk DATA
segments of 1448 bytes client to server, a pure ACK from the server for every two data segments,
FIN/FIN at the end), interleaved round-robin, with 1% of the data segments retransmitted
(identical copy a few segments later) and 1% swapped with the next segment of their flow. Times
feeding them to a `FlowTable` whose sink only counts, and prints segments/s, payload MB/s and
capture MB/s (frame bytes: payload plus 66 bytes of Ethernet, IPv4 and TCP-with-timestamps
headers), per second of CPU time (steadier than wall time on a shared machine; both are shown).

    .venv/bin/python benchmarks/bench_flows.py [--segments 400000] [--flows 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer._common import Anomaly, FrameRef
from analyzer.capture.segment import ACK, FIN, PSH, SYN, Segment
from analyzer.flows.events import FlowInfo, FlowStats, StreamData, StreamEnd, StreamGap
from analyzer.flows.table import FlowTable

MSS_PAYLOAD = 1448
"""Payload of a full segment with the timestamp option on a 1500-byte MTU."""
HEADER_BYTES = 14 + 20 + 32
"""Ethernet + IPv4 + TCP with the timestamp option: what a frame adds to its payload."""
RETRANSMIT_RATE = 0.01
REORDER_RATE = 0.01


class CountingSink:
    """Counts what it is told; the cheapest possible consumer."""

    def __init__(self) -> None:
        self.data_bytes = 0
        self.gaps = 0
        self.anomalies = 0
        self.closed = 0

    def on_flow_start(self, flow: FlowInfo) -> None:
        pass

    def on_data(self, flow: FlowInfo, data: StreamData) -> None:
        self.data_bytes += len(data.data)

    def on_gap(self, flow: FlowInfo, gap: StreamGap) -> None:
        self.gaps += 1

    def on_end(self, flow: FlowInfo, end: StreamEnd) -> None:
        pass

    def on_anomaly(self, flow: FlowInfo, anomaly: Anomaly) -> None:
        self.anomalies += 1

    def on_flow_closed(self, flow: FlowInfo, stats: FlowStats) -> None:
        self.closed += 1


def build(total: int, flows: int, seed: int = 1) -> tuple[list[Segment], int, int, int]:
    """About `total` segments over `flows` connections; returns them, the payload bytes, the
    frame bytes, and the stream bytes (payload without the retransmitted copies)."""
    rng = random.Random(seed)
    payloads = [bytes([65 + i]) * MSS_PAYLOAD for i in range(26)]
    per_flow = max(4, total // flows)
    streams: list[list[tuple[bool, int, int, int, bytes]]] = []
    for f in range(flows):
        cseq = rng.randrange(1 << 32)
        sseq = rng.randrange(1 << 32)
        items: list[tuple[bool, int, int, int, bytes]] = [
            (True, cseq, 0, SYN, b""),
            (False, sseq, cseq + 1, SYN | ACK, b""),
            (True, cseq + 1, sseq + 1, ACK, b""),
        ]
        nxt = cseq + 1
        data: list[tuple[bool, int, int, int, bytes]] = []
        while len(items) + len(data) < per_flow - 3:
            payload = payloads[(f + len(data)) % 26]
            data.append((True, nxt, sseq + 1, ACK | PSH, payload))
            nxt += MSS_PAYLOAD
            if len(data) % 3 == 2:
                data.append((False, sseq + 1, nxt, ACK, b""))
        for i in range(len(data) - 1):
            # Swap two data segments (an ACK never precedes the data it acknowledges).
            if data[i][4] and data[i + 1][4] and rng.random() < REORDER_RATE:
                data[i], data[i + 1] = data[i + 1], data[i]
        with_retransmits: list[tuple[bool, int, int, int, bytes]] = []
        for item in data:
            with_retransmits.append(item)
            if item[4] and rng.random() < RETRANSMIT_RATE:
                with_retransmits.append(item)
        items += with_retransmits
        items += [
            (True, nxt, sseq + 1, FIN | ACK, b""),
            (False, sseq + 1, nxt + 1, FIN | ACK, b""),
            (True, nxt + 1, sseq + 2, ACK, b""),
        ]
        streams.append(items)
    stream_bytes = sum(
        len(item[4]) for items in streams for item in dict.fromkeys(items) if item[0]
    )
    segments: list[Segment] = []
    payload_bytes = 0
    ts = 1_700_000_000.0
    positions = [0] * flows
    live = list(range(flows))
    while live:
        still = []
        for f in live:
            to_server, seq, ack, flags, payload = streams[f][positions[f]]
            positions[f] += 1
            if positions[f] < len(streams[f]):
                still.append(f)
            ts += 0.00001
            client = (f"10.1.{f >> 8 & 255}.{f & 255}", 40000 + f % 20000)
            server = ("192.0.2.25", 25)
            src, dst = (client, server) if to_server else (server, client)
            segments.append(
                Segment(
                    frame=FrameRef("bench", len(segments) + 1),
                    ts=ts,
                    src=src[0],
                    dst=dst[0],
                    sport=src[1],
                    dport=dst[1],
                    seq=seq & 0xFFFFFFFF,
                    ack=ack & 0xFFFFFFFF,
                    flags=flags,
                    window=502,
                    payload=payload,
                    payload_len=len(payload),
                    ttl=64,
                    ip_id=len(segments) & 0xFFFF,
                    src_mac=b"\x02\x00\x00\x00\x00\x01",
                    tsval=len(segments),
                    tsecr=0,
                )
            )
            payload_bytes += len(payload)
        live = still
    frame_bytes = payload_bytes + HEADER_BYTES * len(segments)
    return segments, payload_bytes, frame_bytes, stream_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=400_000)
    parser.add_argument("--flows", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    segments, payload_bytes, frame_bytes, stream_bytes = build(args.segments, args.flows)
    print(
        f"{len(segments)} segments, {args.flows} concurrent flows, "
        f"{payload_bytes / 1e6:.0f} MB payload, {frame_bytes / 1e6:.0f} MB of frames"
    )
    best = float("inf")
    for _ in range(args.repeat):
        sink = CountingSink()
        table = FlowTable(sink)
        add = table.add
        start = time.perf_counter()
        cpu_start = time.process_time()
        for seg in segments:
            add(seg)
        table.finish()
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - start
        elapsed = cpu
        best = min(best, elapsed)
        assert sink.closed == args.flows, sink.closed
        assert sink.data_bytes == stream_bytes, "every byte once, retransmissions not twice"
        assert sink.gaps == sink.anomalies == 0
        print(
            f"  {cpu:.3f} s CPU ({wall:.3f} s wall): {len(segments) / elapsed:,.0f} segments/s, "
            f"{payload_bytes / elapsed / 1e6:.0f} MB/s payload, "
            f"{frame_bytes / elapsed / 1e6:.0f} MB/s of capture "
            f"(delivered {sink.data_bytes / 1e6:.0f} MB, {sink.gaps} gaps, "
            f"{sink.anomalies} anomalies)"
        )
    print(
        f"best: {len(segments) / best:,.0f} segments/s, {frame_bytes / best / 1e6:.0f} MB/s "
        "of capture"
    )


if __name__ == "__main__":
    main()
