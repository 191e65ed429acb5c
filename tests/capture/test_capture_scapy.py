"""Captures written by scapy (an independent writer and parser) read back the same here."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, rdpcap, wrpcap

from analyzer.capture import open_capture


def packets() -> list:  # type: ignore[type-arg]
    base = 1_700_000_000.5
    pkts = [
        Ether(src="02:00:00:00:00:01")
        / IP(src="10.0.0.1", dst="10.0.0.2", id=11)
        / TCP(sport=40000, dport=25, seq=1, flags="S", options=[("MSS", 1460), ("WScale", 7)]),
        Ether()
        / IP(src="10.0.0.2", dst="10.0.0.1")
        / TCP(sport=25, dport=40000, seq=9, ack=2)
        / Raw(b"220 mail.example ESMTP\r\n"),
        Ether() / Dot1Q(vlan=5) / IP() / TCP(options=[("Timestamp", (123, 456))]) / Raw(b"EHLO"),
        Ether() / IP() / UDP() / Raw(b"not tcp"),
        Ether()
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / TCP(sport=1, dport=587, seq=77)
        / Raw(b"v6 data"),
        *fragment(Ether() / IP(id=999) / TCP(seq=5000) / Raw(b"F" * 3000), fragsize=1000),  # type: ignore[no-untyped-call]
    ]
    for i, pkt in enumerate(pkts):
        pkt.time = base + i
        pkt[Ether].dst = "02:00:00:00:00:02"
    return pkts


def scapy_view(path: Path) -> list[tuple[int, int, bytes]]:
    """(seq, sport, payload) of each unfragmented TCP packet, as scapy parses the file."""
    out = []
    for pkt in rdpcap(str(path)):
        if TCP in pkt and not (IP in pkt and (pkt[IP].flags.MF or pkt[IP].frag)):
            out.append((pkt[TCP].seq, pkt[TCP].sport, bytes(pkt[TCP].payload)))
    return out


@pytest.mark.parametrize("writer", ["wrpcap", "PcapNgWriter"])
def test_scapy_written_capture_reads_back_identically(tmp_path: Path, writer: str) -> None:
    path = tmp_path / ("s.pcap" if writer == "wrpcap" else "s.pcapng")
    pkts = packets()
    if writer == "wrpcap":
        wrpcap(str(path), pkts)
    else:
        with PcapNgWriter(str(path)) as out:
            for pkt in pkts:
                out.write(pkt)
    capture = open_capture([path], "s")
    segments = list(capture.segments())
    unfragmented = [(s.seq, s.sport, s.payload) for s in segments if s.seq != 5000]
    assert unfragmented == scapy_view(path)
    (syn, _banner, ehlo, v6, reassembled) = segments
    assert (syn.mss, syn.wscale, syn.ip_id) == (1460, 7, 11)
    assert syn.src_mac == bytes.fromhex("020000000001")
    assert (ehlo.tsval, ehlo.tsecr) == (123, 456)
    assert v6.src == "2001:db8::1"
    assert reassembled.payload == b"F" * 3000
    assert reassembled.frame.frame_no == len(pkts)
    assert syn.ts == pytest.approx(1_700_000_000.5)
    assert capture.stats.non_tcp == 1
    assert capture.stats.ip_fragments == len(pkts) - 5
