"""Connections that never carry a payload byte are counted, not made into SMTP sessions.

Half-open SYNs, SYNs refused with a reset and connections that only shake hands are summarised
per capture (`traffic.connections_without_payload` and one `connections_without_payload`
anomaly). So are connections whose client sent bytes without ending a line while the server sent
nothing (`traffic.connections_without_smtp`); the server's greeting alone, or one client line, is
a session.
"""

from __future__ import annotations

import json
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from analyzer.cli import main
from analyzer.pipeline import run_capture

from ..craft import SERVER, write
from ..detect.transcripts import CLIENT_MAC, MESSAGE, SERVER_MAC, greeting, packets

START = 1.7e9


def _tcp(src: tuple[str, int], dst: tuple[str, int], flags: str, t: float, seq: int) -> Packet:
    macs = (SERVER_MAC, CLIENT_MAC) if src == SERVER else (CLIENT_MAC, SERVER_MAC)
    pkt = (
        Ether(src=macs[0], dst=macs[1])
        / IP(src=src[0], dst=dst[0])
        / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq)
    )
    pkt.time = t
    return pkt


def attempts(half_open: int, refused: int, handshakes: int) -> list[Packet]:
    """SYNs never answered, SYNs answered with a reset, and handshakes closed at once."""
    out: list[Packet] = []
    t = START
    for i in range(half_open + refused + handshakes):
        client = (f"192.0.2.{1 + i % 50}", 20000 + i)
        t += 0.001
        out.append(_tcp(client, SERVER, "S", t, 1000))
        if i >= half_open + refused:
            out.append(_tcp(SERVER, client, "SA", t + 0.0001, 5000))
            out.append(_tcp(client, SERVER, "A", t + 0.0002, 1001))
            out.append(_tcp(client, SERVER, "FA", t + 0.0003, 1001))
            out.append(_tcp(SERVER, client, "FA", t + 0.0004, 5001))
        elif i >= half_open:
            out.append(_tcp(SERVER, client, "RA", t + 0.0001, 0))
    return out


def mail() -> list[Packet]:
    return packets([*greeting(), *MESSAGE], start=START + 10)


def test_connections_without_payload_are_counted_not_sessions(tmp_path: Path) -> None:
    capture = write(tmp_path / "flood.pcap", attempts(20, 5, 3), mail())
    run = run_capture([capture])
    assert len(run.sessions) == 1
    assert run.sessions[0].transactions
    silent = run.pipeline_stats.silent
    assert (silent.count, silent.unanswered, silent.reset) == (28, 20, 5)
    assert len(silent.clients) == 28
    assert run.pipeline_stats.smtp_sessions == 1


def test_the_report_says_so_once(tmp_path: Path) -> None:
    capture = write(tmp_path / "flood.pcap", attempts(20, 5, 3), mail())
    out = tmp_path / "report"
    assert main(["analyze", str(capture), "--out", str(out), "--format", "json"]) in (0, 1)
    report = json.loads((out / "report.json").read_text())
    assert len(report["sessions"]) == 1
    (entry,) = report["captures"]
    assert entry["anomalies"]["connections_without_payload"] == 28
    summary = entry["traffic"]["connections_without_payload"]
    assert summary["count"] == 28
    assert summary["unanswered"] == 20
    assert summary["reset"] == 5
    assert summary["clients"] == 28 and summary["more_clients"] is False
    assert summary["first_ts"] < summary["last_ts"] < START + 1
    assert not any(f["kind"] == "session_unmatched" for f in report["findings"])


def test_a_greeting_alone_or_a_client_line_alone_is_a_session(tmp_path: Path) -> None:
    greeted = packets(
        [("s", b"220 mx.example.org ESMTP\r\n")], client=("192.0.2.201", 30002), start=START
    )
    early_line = packets([("c", b"QUIT\r\n")], client=("192.0.2.202", 30003), start=START + 1)
    byte_then_greeting = packets(
        [("c", b"Q"), ("s", b"220 mx.example.org ESMTP\r\n")],
        client=("192.0.2.203", 30004),
        start=START + 2,
    )
    run = run_capture([write(tmp_path / "spoken.pcap", greeted, early_line, byte_then_greeting)])
    assert len(run.sessions) == 3
    assert run.sessions[0].banner is not None
    assert [line.verb for line in run.sessions[1].lines] == ["QUIT"]
    assert run.pipeline_stats.silent.count == 0
    assert run.pipeline_stats.unspoken.count == 0


def test_client_bytes_that_never_end_a_line_to_a_silent_server_are_counted_not_a_session(
    tmp_path: Path,
) -> None:
    one_byte = packets([("c", b"Q")], client=("192.0.2.200", 30001), start=START)
    fragment = packets([("c", b"EHLO half-")], client=("192.0.2.200", 30005), start=START + 1)
    pcap = write(tmp_path / "fragments.pcap", one_byte, fragment)
    run = run_capture([pcap])
    assert run.sessions == []
    assert run.pipeline_stats.unspoken.count == 2
    assert run.pipeline_stats.unspoken.client_bytes == 1 + len(b"EHLO half-")
    assert run.pipeline_stats.silent.count == 0

    assert main(["analyze", str(pcap), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (capture,) = report["captures"]
    assert capture["anomalies"] == {"connections_without_smtp": 2}
    summary = capture["traffic"]["connections_without_smtp"]
    assert summary["count"] == 2 and summary["client_bytes"] == 11 and summary["clients"] == 1
    assert report["verdict"]["kind"] == "no_smtp"
    assert report["sessions"] == []
