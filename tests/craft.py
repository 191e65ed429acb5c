"""Write small pcaps with scapy: one TCP connection per dialogue, whole lines per segment.

For the tests that need a capture holding particular bytes (a hostile banner) or no SMTP at all.
Each item of a dialogue is (sender, bytes): "c" for the client, "s" for the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

CLIENT = ("198.51.100.7", 40123)
SERVER = ("203.0.113.9", 25)
Dialogue = Sequence[tuple[str, bytes]]


def connection(
    items: Dialogue,
    *,
    client: tuple[str, int] = CLIENT,
    server: tuple[str, int] = SERVER,
    start: float = 1.7e9,
    step: float = 0.01,
) -> list[Packet]:
    """Handshake, the items one segment each, then FIN both ways."""
    c_seq, s_seq = 1000, 5000
    t = start
    packets: list[Packet] = []

    def seg(sender: str, flags: str, payload: bytes = b"") -> None:
        nonlocal c_seq, s_seq, t
        t += step
        if sender == "c":
            src, dst, seq, ack = client, server, c_seq, s_seq
        else:
            src, dst, seq, ack = server, client, s_seq, c_seq
        pkt = (
            Ether()
            / IP(src=src[0], dst=dst[0], ttl=64)
            / TCP(sport=src[1], dport=dst[1], seq=seq, ack=ack, flags=flags)
        )
        if payload:
            pkt = pkt / Raw(payload)
        pkt.time = t
        packets.append(pkt)
        advance = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        if sender == "c":
            c_seq += advance
        else:
            s_seq += advance

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for sender, data in items:
        seg(sender, "PA", data)
    seg("c", "FA")
    seg("s", "FA")
    seg("c", "A")
    return packets


def write(path: Path, *connections: list[Packet]) -> Path:
    packets = sorted((p for c in connections for p in c), key=lambda p: float(p.time))
    wrpcap(str(path), packets)
    return path
