"""Rewrite a capture the way another firewall, capture host or NIC would have seen it.

Moves every timestamp (another clock), maps addresses and ports (another NAT), adds a constant
to each direction's sequence numbers (another ISN randomisation) and cuts data segments into
smaller ones (another MSS or segmentation offload), keeping every stream's bytes identical.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.packet import Packet, Raw
from scapy.utils import rdpcap, wrpcap


@dataclass(frozen=True)
class Mutation:
    clock_offset_s: float
    seed: int
    split_segments: bool
    strip_timestamps: bool = False
    """Remove the TCP timestamp option (hosts with timestamps off): no TSval to pair on."""
    random_ip_ids: bool = False
    """Give every packet a random IPv4 IP-ID (a proxy's own connection, or pf `scrub random-id`)."""


def mutate(source: Path, target: Path, mutation: Mutation) -> None:
    rng = random.Random(mutation.seed)
    packets = rdpcap(str(source))
    new_ip: dict[str, str] = {}
    new_port: dict[tuple[str, int], int] = {}
    isn_shift: dict[tuple[str, int], int] = {}  # per sending endpoint

    def ip_for(addr: str) -> str:
        return new_ip.setdefault(
            addr, f"10.{rng.randrange(256)}.{rng.randrange(256)}.{len(new_ip) + 1}"
        )

    def port_for(endpoint: tuple[str, int]) -> int:
        if endpoint[1] == 25:
            return 25  # the server's port survives NAT; the client's does not
        return new_port.setdefault(endpoint, rng.randrange(20000, 65000))

    out: list[Packet] = []
    for pkt in packets:
        if IP not in pkt or TCP not in pkt:
            out.append(pkt)
            continue
        ip, tcp = pkt[IP], pkt[TCP]
        src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        shift_src = isn_shift.setdefault(src, rng.randrange(2**32))
        shift_dst = isn_shift.setdefault(dst, rng.randrange(2**32))
        ip.src, ip.dst = ip_for(src[0]), ip_for(dst[0])
        tcp.sport, tcp.dport = port_for(src), port_for(dst)
        tcp.seq = (tcp.seq + shift_src) % 2**32
        if tcp.flags & 0x10:
            tcp.ack = (tcp.ack + shift_dst) % 2**32
        if mutation.strip_timestamps:
            tcp.options = [o for o in tcp.options if o[0] != "Timestamp"]
            del tcp.dataofs
        if mutation.random_ip_ids:
            ip.id = rng.randrange(1, 2**16)
        del ip.chksum, ip.len, tcp.chksum
        pkt.time = float(pkt.time) + mutation.clock_offset_s
        payload = bytes(tcp.payload)
        if not mutation.split_segments or len(payload) < 2:
            out.append(pkt)
            continue
        cuts = sorted(rng.sample(range(1, len(payload)), k=min(3, len(payload) - 1)))
        start = 0
        for end in [*cuts, len(payload)]:
            piece = pkt.copy()
            piece[TCP].remove_payload()
            piece[TCP].add_payload(Raw(payload[start:end]))
            piece[TCP].seq = (tcp.seq + start) % 2**32
            del piece[IP].len, piece[IP].chksum, piece[TCP].chksum
            piece.time = pkt.time + start * 1e-7
            out.append(piece)
            start = end
    wrpcap(str(target), out)
